-- Step 3: with a valid CHECK ({column} IS NOT NULL) in place, PostgreSQL (12+) skips
-- the full-table scan: the ACCESS EXCLUSIVE lock is again held for milliseconds.
ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL
