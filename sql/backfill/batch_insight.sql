-- One keyset batch of Insight: its connection's workspaceId when connectionId is set, else
-- its user's workspace.
WITH batch AS (
    SELECT "id", "userId", "connectionId"
    FROM "Insight"
    WHERE "workspaceId" IS NULL AND "id" > %(after)s
    ORDER BY "id"
    LIMIT %(size)s
), placed AS (
    SELECT b."id",
           CASE WHEN b."connectionId" IS NOT NULL
                THEN (SELECT c."workspaceId" FROM "Connection" c WHERE c."id" = b."connectionId")
                ELSE tenancy_runbook.user_workspace(b."userId") END AS ws
    FROM batch b
), updated AS (
    UPDATE "Insight" i
    SET "workspaceId" = p.ws
    FROM placed p
    WHERE i."id" = p."id" AND i."workspaceId" IS NULL AND p.ws IS NOT NULL
    RETURNING 1
)
SELECT (SELECT max("id") FROM batch) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM updated) AS updated
