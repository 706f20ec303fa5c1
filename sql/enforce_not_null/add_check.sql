-- Step 1: a CHECK that new rows must already satisfy, NOT VALID: existing rows are not
-- scanned, so the ACCESS EXCLUSIVE lock lasts milliseconds whatever the table's size.
ALTER TABLE {table} ADD CONSTRAINT {constraint} CHECK ({column} IS NOT NULL) NOT VALID
