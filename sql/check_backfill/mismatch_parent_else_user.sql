-- The rule_mismatches.sql condition of a table whose rows take their parent's tenant when the
-- parent column is set, else their user's.
LEFT JOIN {parent} p ON p.{parent_key} = t.{column}
LEFT JOIN user_workspace uw ON uw.user_id = t.{user}
WHERE t.{tenant} IS NOT NULL
  AND CASE
        WHEN t.{column} IS NOT NULL THEN t.{tenant} IS DISTINCT FROM p.{tenant}
        ELSE t.{tenant} IS DISTINCT FROM uw.tenant_id
             AND NOT EXISTS (SELECT 1 FROM belongs b WHERE b.user_id = t.{user} AND b.tenant_id = t.{tenant})
      END
