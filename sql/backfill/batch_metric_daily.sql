-- One keyset batch of MetricDaily, the second pass (after pages_metric_daily.sql): the next
-- rows by primary key still NULL get their connection's workspaceId. The ids are looked up
-- by primary key (= ANY of an array), so the UPDATE never scans the whole table.
WITH batch AS MATERIALIZED (
    SELECT "id"
    FROM "MetricDaily"
    WHERE "workspaceId" IS NULL AND "id" > %(after)s
      AND ("id" <= %(upto)s OR %(upto)s::text IS NULL)   -- a worker's range of keys (key_bound.sql)
    ORDER BY "id"
    LIMIT %(size)s
), updated AS (
    UPDATE "MetricDaily" m
    SET "workspaceId" = c."workspaceId"
    FROM "Connection" c
    WHERE m."id" = ANY (ARRAY(SELECT "id" FROM batch)) AND m."workspaceId" IS NULL
      AND c."id" = m."connectionId" AND c."workspaceId" IS NOT NULL
    RETURNING 1
)
SELECT (SELECT max("id") FROM batch) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM updated) AS updated
