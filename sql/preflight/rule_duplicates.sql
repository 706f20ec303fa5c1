-- Users the rule as a set gives more than one row. A rule of kind sql must give at most one per
-- user (docs/spec.md): with more, the guard places a row by whichever it meets first and the
-- checks count the user's rows once per rule row. (A default_else_owner rule gives one per user
-- by construction; the check costs one pass over the rule.) user_workspace: as in
-- preflight/collisions.sql.
WITH user_workspace AS (
    {user_workspace}
)
SELECT user_id::text AS user_id, count(*) AS rule_rows,
       array_agg(DISTINCT tenant_id::text) AS tenants
FROM user_workspace
GROUP BY user_id
HAVING count(*) > 1
ORDER BY user_id
