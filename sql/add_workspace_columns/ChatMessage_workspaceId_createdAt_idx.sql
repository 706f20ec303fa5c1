CREATE INDEX CONCURRENTLY IF NOT EXISTS "ChatMessage_workspaceId_createdAt_idx" ON "ChatMessage"("workspaceId", "createdAt")
