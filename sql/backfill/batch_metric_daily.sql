-- One keyset batch of MetricDaily: its connection's workspaceId (Connection goes first).
WITH batch AS (
    SELECT "id"
    FROM "MetricDaily"
    WHERE "workspaceId" IS NULL AND "id" > %(after)s
    ORDER BY "id"
    LIMIT %(size)s
), updated AS (
    UPDATE "MetricDaily" m
    SET "workspaceId" = c."workspaceId"
    FROM batch b, "Connection" c
    WHERE m."id" = b."id" AND m."workspaceId" IS NULL
      AND c."id" = m."connectionId" AND c."workspaceId" IS NOT NULL
    RETURNING 1
)
SELECT (SELECT max("id") FROM batch) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM updated) AS updated
