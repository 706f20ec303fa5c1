-- One keyset batch of Insight, the second pass (after pages_insight.sql): its connection's
-- workspaceId when connectionId is set, else its user's workspace.
WITH batch AS MATERIALIZED (
    SELECT "id",
           CASE WHEN "connectionId" IS NOT NULL
                THEN (SELECT c."workspaceId" FROM "Connection" c WHERE c."id" = i."connectionId")
                ELSE tenancy_runbook.user_workspace("userId") END AS ws
    FROM "Insight" i
    WHERE "workspaceId" IS NULL AND "id" > %(after)s
      AND ("id" <= %(upto)s OR %(upto)s::text IS NULL)   -- a worker's range of keys (key_bound.sql)
    ORDER BY "id"
    LIMIT %(size)s
), updated AS (
    UPDATE "Insight" i
    SET "workspaceId" = b.ws
    FROM batch b
    WHERE i."id" = ANY (ARRAY(SELECT "id" FROM batch)) AND i."id" = b."id"
      AND i."workspaceId" IS NULL AND b.ws IS NOT NULL
    RETURNING 1
)
SELECT (SELECT max("id") FROM batch) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM updated) AS updated
