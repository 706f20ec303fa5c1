-- MetricDaily: its connection's workspaceId (Connection is backfilled first).
UPDATE "MetricDaily" m
SET "workspaceId" = c."workspaceId"
FROM "Connection" c
WHERE m."workspaceId" IS NULL
  AND c."id" = m."connectionId"
  AND c."workspaceId" IS NOT NULL
