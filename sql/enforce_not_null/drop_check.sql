-- Step 4: the CHECK has done its job; NOT NULL now says the same. (squawk's ban-drop-constraint
-- warns that clients may rely on a dropped constraint; this one is the runbook's own, and
-- the NOT NULL that replaces it guarantees the same.)
-- squawk-ignore ban-drop-constraint
ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}
