-- The user -> tenant rule as a set (docs/spec.md, user_rule kind default_else_owner): a user's
-- default tenant when set, otherwise the one tenant in which the user has the owner role. No
-- default and zero or several owned tenants gives NULL: the rule does not guess.
-- Identifiers: Spec.rule_identifiers() ({users} {user_key} {default_tenant} {members}
-- {member_user} {member_tenant} {member_role}); the owner role's value is bound as %(owner)s.
-- Columns: user_id, tenant_id. The checks place it in their CTE user_workspace (the placeholder
-- of preflight/collisions.sql, preflight/unplaceable_users.sql, check_backfill/rule_mismatches.sql;
-- placement.rule_set; a rule of kind sql stands there as common/user_workspace_sql.sql). The
-- guard's per-row function in backfill/guard_rule.sql is the only other form of the rule; a
-- test checks they agree.
SELECT u.{user_key} AS user_id,
       COALESCE(u.{default_tenant}, owned.tenant_id) AS tenant_id
FROM {users} u
LEFT JOIN (
    SELECT {member_user} AS user_id, min({member_tenant}) AS tenant_id
    FROM {members}
    WHERE {member_role}::text = %(owner)s
    GROUP BY {member_user}
    HAVING count(*) = 1
) owned ON owned.user_id = u.{user_key}
