-- Migration 1, step 1: the nullable column. No default, so no table rewrite: the ACCESS
-- EXCLUSIVE lock is held for milliseconds (and waited for at most lock_timeout).
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "workspaceId" TEXT
