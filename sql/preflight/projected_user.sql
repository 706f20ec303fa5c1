-- The rows of {table} with the tenant each will have after the backfill (row_tenant, as text):
-- the one it has, else its user's by the rule (the CTE user_workspace of the statement this is
-- part of); row_user: that user. to_jsonb reads the tenant column %(tenant)s before it exists.
SELECT t.*, t.{key} AS row_key, t.{user} AS row_user,
       COALESCE(to_jsonb(t) ->> %(tenant)s::text, uw.tenant_id::text) AS row_tenant
FROM {table} t
LEFT JOIN user_workspace uw ON uw.user_id = t.{user}
