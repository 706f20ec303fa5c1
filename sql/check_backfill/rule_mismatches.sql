-- Rows of {table} whose tenant column disagrees with the backfill rule; mismatch is the
-- condition for the table's derivation (check_backfill/mismatch_<derivation>.sql):
--  * from the parent: must equal the parent row's tenant;
--  * from the user: must be the rule's tenant, or one the user belongs to (belongs): rows the
--    new application version wrote itself may name any tenant of their user;
--  * parent_else_user: as the parent's when the parent column is set, else as the user's.
-- user_workspace: the rule as a set (common/user_workspace.sql, or common/user_workspace_sql.sql
-- for a rule of kind sql); belongs: the tenants each user belongs to
-- (check_backfill/belongs_<rule kind>.sql). NULLs are not counted here: they are counted as NULLs.
WITH user_workspace AS (
    {user_workspace}
),
belongs AS (
    {belongs}
)
SELECT count(*) AS mismatches
FROM {table} t
{mismatch}
