-- The users of preflight/unplaceable_users.sql for a rule of kind sql: the spec declares no user
-- table, so they are the users of the rows still without a tenant (users: the row_user of each
-- table's preflight/owned_<derivation>.sql, UNION ALL) to whom the rule's file (the CTE
-- user_workspace: common/user_workspace_sql.sql) gives no row or a NULL tenant_id. No membership
-- to tell an orphan from an ambiguous user: kind says the rule gives none; owned_tenants is NULL.
SELECT DISTINCT u.row_user AS user_id, 'no tenant by the rule' AS kind, NULL::bigint AS owned_tenants
FROM ({users}) u
WHERE u.row_user IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM user_workspace uw WHERE uw.user_id = u.row_user AND uw.tenant_id IS NOT NULL)
