-- The throughput limit the batched backfill is measured against: MetricDaily in one statement,
-- one transaction (every row locked until it commits).
UPDATE "MetricDaily" m
SET "workspaceId" = c."workspaceId"
FROM "Connection" c
WHERE m."workspaceId" IS NULL
  AND c."id" = m."connectionId"
  AND c."workspaceId" IS NOT NULL
