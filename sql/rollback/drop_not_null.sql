-- The seed review's emergency rollback: workspaceId becomes nullable again.
-- Migration 1 (the nullable columns, indexes and foreign keys) stays: it is safe.
ALTER TABLE "Connection" ALTER COLUMN "workspaceId" DROP NOT NULL;
ALTER TABLE "MetricDaily" ALTER COLUMN "workspaceId" DROP NOT NULL;
ALTER TABLE "Insight" ALTER COLUMN "workspaceId" DROP NOT NULL;
ALTER TABLE "ChatMessage" ALTER COLUMN "workspaceId" DROP NOT NULL;
