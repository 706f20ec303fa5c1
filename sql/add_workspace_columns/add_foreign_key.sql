-- Migration 1's foreign key, NOT VALID: existing rows are not scanned under the lock (SHARE ROW
-- EXCLUSIVE on both tables, briefly); new rows are checked from now on. Validated separately.
ALTER TABLE {table} ADD CONSTRAINT {constraint}
    FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE NOT VALID
