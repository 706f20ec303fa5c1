-- Move rows by key from {table} to {quarantine}, in one statement: deleted here and inserted
-- there in the same transaction, so a row is always in exactly one of the two.
WITH moved AS (
    DELETE FROM {table} WHERE {key} = ANY(%(ids)s::text[]) RETURNING *
)
INSERT INTO {quarantine} ({columns}, "reason", "run_id", "quarantined_at")
SELECT {columns}, %(reason)s, %(run_id)s, now() FROM moved
