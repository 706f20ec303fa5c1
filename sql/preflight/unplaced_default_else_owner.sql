-- The users of preflight/unplaceable_users.sql for a default_else_owner rule: every user the rule
-- gives no tenant (the CTE user_workspace: common/user_workspace.sql), and why: no default tenant
-- and the owner role in none (orphan) or in several (ambiguous), with how many they own.
SELECT uw.user_id,
       CASE WHEN COALESCE(o.tenants, 0) = 0 THEN 'orphan' ELSE 'ambiguous' END AS kind,
       COALESCE(o.tenants, 0) AS owned_tenants
FROM user_workspace uw
LEFT JOIN (
    SELECT {member_user} AS user_id, count(*) AS tenants
    FROM {members}
    WHERE {member_role}::text = %(owner)s
    GROUP BY {member_user}
) o ON o.user_id = uw.user_id
WHERE uw.tenant_id IS NULL
