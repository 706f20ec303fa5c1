-- The rows of {table} still without a tenant (%(tenant)s, read by to_jsonb: it works before the
-- column exists), and the user (row_user) whose tenant the backfill would give them.
SELECT t.{key} AS row_key, t.{user} AS row_user
FROM {table} t
WHERE to_jsonb(t) ->> %(tenant)s::text IS NULL
