-- Move up to %(limit)s rows of {table} that still have no workspaceId after the backfill:
-- the rule cannot place them (their user is orphan or ambiguous, or their connection is).
WITH moved AS (
    DELETE FROM {table}
    WHERE "id" IN (SELECT "id" FROM {table} WHERE "workspaceId" IS NULL ORDER BY "id" LIMIT %(limit)s)
    RETURNING *
)
INSERT INTO {quarantine} ({columns}, "reason", "run_id", "quarantined_at")
SELECT {columns}, %(reason)s, %(run_id)s, now() FROM moved
