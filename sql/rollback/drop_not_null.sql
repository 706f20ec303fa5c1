-- The seed review's emergency rollback, one table at a time:
--   ALTER TABLE "<Table>" ALTER COLUMN "<tenant column>" DROP NOT NULL;
-- Migration 1 (the nullable columns, indexes and foreign keys) stays: it is safe.
ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL
