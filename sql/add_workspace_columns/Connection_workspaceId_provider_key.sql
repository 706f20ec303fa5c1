-- Migration 1's unique index, built without blocking writes (outside any transaction).
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Connection_workspaceId_provider_key" ON "Connection"("workspaceId", "provider")
