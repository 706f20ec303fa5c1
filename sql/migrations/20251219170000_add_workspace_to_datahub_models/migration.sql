-- AlterTable
ALTER TABLE "ChatMessage" ADD COLUMN "workspaceId" TEXT;

-- AlterTable
ALTER TABLE "Connection" ADD COLUMN "workspaceId" TEXT;

-- AlterTable
ALTER TABLE "Insight" ADD COLUMN "workspaceId" TEXT;

-- AlterTable
ALTER TABLE "MetricDaily" ADD COLUMN "workspaceId" TEXT;

-- CreateIndex
CREATE INDEX "ChatMessage_workspaceId_createdAt_idx" ON "ChatMessage"("workspaceId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Connection_workspaceId_provider_key" ON "Connection"("workspaceId", "provider");

-- CreateIndex
CREATE INDEX "Insight_workspaceId_idx" ON "Insight"("workspaceId");

-- CreateIndex
CREATE INDEX "MetricDaily_workspaceId_date_idx" ON "MetricDaily"("workspaceId", "date");

-- AddForeignKey
ALTER TABLE "Connection" ADD CONSTRAINT "Connection_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "MetricDaily" ADD CONSTRAINT "MetricDaily_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Insight" ADD CONSTRAINT "Insight_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ChatMessage" ADD CONSTRAINT "ChatMessage_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;
