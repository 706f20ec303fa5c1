-- The rule_mismatches.sql condition of a table whose rows take their parent's tenant.
JOIN {parent} p ON p.{parent_key} = t.{column}
WHERE t.{tenant} IS NOT NULL
  AND t.{tenant} IS DISTINCT FROM p.{tenant}
