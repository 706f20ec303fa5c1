-- Move up to %(limit)s rows of {table} that hang, through any chain depth, below the given rows
-- of another table (under: their keys, quarantine/below.sql nested once per hop); called
-- until it moves nothing, so each transaction stays short. Leaves are moved first, so the
-- chain is still whole when a level is moved.
WITH moved AS (
    DELETE FROM {table}
    WHERE {key} IN (SELECT {key} FROM {table} WHERE {column} IN ({under}) LIMIT %(limit)s)
    RETURNING *
)
INSERT INTO {quarantine} ({columns}, "reason", "run_id", "quarantined_at")
SELECT {columns}, %(reason)s, %(run_id)s, now() FROM moved
