-- AlterTable
ALTER TABLE "ChatMessage" ALTER COLUMN "workspaceId" SET NOT NULL;

-- AlterTable
ALTER TABLE "Connection" ALTER COLUMN "workspaceId" SET NOT NULL;

-- AlterTable
ALTER TABLE "Insight" ALTER COLUMN "workspaceId" SET NOT NULL;

-- AlterTable
ALTER TABLE "MetricDaily" ALTER COLUMN "workspaceId" SET NOT NULL;
