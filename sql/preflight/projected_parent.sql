-- As projected_user.sql, for a table whose rows take their parent's tenant: the one a row has,
-- else its parent row's (parent: the parent table's projection, any chain depth).
SELECT t.*, t.{key} AS row_key, p.row_user,
       COALESCE(to_jsonb(t) ->> %(tenant)s::text, p.row_tenant) AS row_tenant
FROM {table} t
LEFT JOIN ({parent}) p ON p.row_key = t.{column}
