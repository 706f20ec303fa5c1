-- Move up to %(limit)s rows of {table} that still have no tenant ({tenant}) after the backfill:
-- the rule cannot place them (their user is orphan or ambiguous, or their parent row is).
WITH moved AS (
    DELETE FROM {table}
    WHERE {key} IN (SELECT {key} FROM {table} WHERE {tenant} IS NULL ORDER BY {key} LIMIT %(limit)s)
    RETURNING *
)
INSERT INTO {quarantine} ({columns}, "reason", "run_id", "quarantined_at")
SELECT {columns}, %(reason)s, %(run_id)s, now() FROM moved
