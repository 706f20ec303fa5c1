-- Step 4: the CHECK has done its job; NOT NULL now says the same.
ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}
