-- Move up to %(limit)s rows of {table} (MetricDaily, Insight) that reference the given
-- connections; called until it moves nothing, so each transaction stays short.
WITH moved AS (
    DELETE FROM {table}
    WHERE "id" IN (SELECT "id" FROM {table} WHERE "connectionId" = ANY(%(ids)s::text[]) LIMIT %(limit)s)
    RETURNING *
)
INSERT INTO {quarantine} ({columns}, "reason", "run_id", "quarantined_at")
SELECT {columns}, %(reason)s, %(run_id)s, now() FROM moved
