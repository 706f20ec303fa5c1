-- The belongs CTE of check_backfill/rule_mismatches.sql for a default_else_owner rule: every
-- tenant the user is a member of (any role), and the user's default tenant.
SELECT {member_user} AS user_id, {member_tenant} AS tenant_id FROM {members}
UNION
SELECT {user_key}, {default_tenant} FROM {users} WHERE {default_tenant} IS NOT NULL
