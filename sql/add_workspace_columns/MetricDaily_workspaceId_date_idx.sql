CREATE INDEX CONCURRENTLY IF NOT EXISTS "MetricDaily_workspaceId_date_idx" ON "MetricDaily"("workspaceId", "date")
