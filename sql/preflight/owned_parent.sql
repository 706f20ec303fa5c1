-- As owned_user.sql, for a table whose rows take their parent's tenant: a row still without one
-- whose parent row (parent: the parent table's rows without one, any chain depth) has none
-- either; row_user: the user the chain ends at.
SELECT t.{key} AS row_key, p.row_user
FROM {table} t
JOIN ({parent}) p ON p.row_key = t.{column}
WHERE to_jsonb(t) ->> %(tenant)s::text IS NULL
