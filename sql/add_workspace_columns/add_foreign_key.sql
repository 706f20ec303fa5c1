-- Migration 1's foreign key, NOT VALID: existing rows are not scanned under the lock (SHARE ROW
-- EXCLUSIVE on both tables, briefly); new rows are checked from now on. Validated separately.
-- {on_delete} / {on_update}: the spec's actions (CASCADE, RESTRICT or NO ACTION).
ALTER TABLE {table} ADD CONSTRAINT {constraint}
    FOREIGN KEY ({column}) REFERENCES {tenant_table}({tenant_key})
    ON DELETE {on_delete} ON UPDATE {on_update} NOT VALID
