-- The values of one unique key ({group}: its columns, the tenant column's projected value as
-- row_tenant) that the backfill would give to more than one row of its table: the unique index
-- would reject all but one. ids: the rows, the winner first ({winner}: the spec's order);
-- user_ids: the users whose rule places them. projected: the table's rows with the tenant
-- each will have (preflight/projected_<derivation>.sql); a row that has one keeps it.
-- user_workspace: the rule as a set (common/user_workspace.sql, or common/user_workspace_sql.sql
-- for a rule of kind sql).
WITH user_workspace AS (
    {user_workspace}
),
projected AS (
    {projected}
)
SELECT {group}, count(*) AS rows,
       array_agg(row_key ORDER BY {winner}) AS ids,
       array_agg(DISTINCT row_user) AS user_ids
FROM projected
WHERE ({group}) IS NOT NULL
GROUP BY {group}
HAVING count(*) > 1
ORDER BY {group}
