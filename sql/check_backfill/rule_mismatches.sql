-- Rows of {table} whose tenant column disagrees with the backfill rule; mismatch is the
-- condition for the table's derivation (check_backfill/mismatch_<derivation>.sql):
--  * from the parent: must equal the parent row's tenant;
--  * from the user: must be the rule's tenant, or one the user belongs to (member, or default):
--    rows the new application version wrote itself may name any tenant of their user;
--  * parent_else_user: as the parent's when the parent column is set, else as the user's.
-- NULLs are not counted here: they are counted as NULLs.
WITH user_workspace AS (
    {include common/user_workspace}
),
belongs AS (
    SELECT {member_user} AS user_id, {member_tenant} AS tenant_id FROM {members}
    UNION
    SELECT {user_key}, {default_tenant} FROM {users} WHERE {default_tenant} IS NOT NULL
)
SELECT count(*) AS mismatches
FROM {table} t
{mismatch}
