CREATE INDEX CONCURRENTLY IF NOT EXISTS "Insight_workspaceId_idx" ON "Insight"("workspaceId")
