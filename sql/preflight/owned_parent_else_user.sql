-- As owned_user.sql, for a table whose rows take their parent's tenant when {column} is set
-- (as owned_parent.sql), else their user's.
SELECT t.{key} AS row_key, t.{user} AS row_user
FROM {table} t
WHERE t.{column} IS NULL AND to_jsonb(t) ->> %(tenant)s::text IS NULL
UNION ALL
SELECT t.{key}, p.row_user
FROM {table} t
JOIN ({parent}) p ON p.row_key = t.{column}
WHERE to_jsonb(t) ->> %(tenant)s::text IS NULL
