-- The belongs CTE of check_backfill/rule_mismatches.sql for a rule of kind sql: the spec declares
-- no membership, so a user belongs only to the tenant the rule's own SELECT gives (the CTE
-- user_workspace): each row must hold exactly the rule's tenant.
SELECT user_id, tenant_id FROM user_workspace WHERE tenant_id IS NOT NULL
