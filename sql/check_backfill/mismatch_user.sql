-- The rule_mismatches.sql condition of a table whose rows take their user's tenant.
LEFT JOIN user_workspace uw ON uw.user_id = t.{user}
WHERE t.{tenant} IS NOT NULL
  AND t.{tenant} IS DISTINCT FROM uw.tenant_id
  AND NOT EXISTS (SELECT 1 FROM belongs b WHERE b.user_id = t.{user} AND b.tenant_id = t.{tenant})
