-- The guard on one table: rows written without a tenant (<tenant>) get one by the rule (row
-- trigger), and each statement that wrote such rows adds them to the counts (statement
-- trigger; for any other statement only its WHEN is evaluated: one setting read).
-- (SHARE ROW EXCLUSIVE on the table for a moment; waited for at most lock_timeout.)
CREATE OR REPLACE TRIGGER tenancy_runbook_place_workspace
    BEFORE INSERT OR UPDATE ON {table}
    FOR EACH ROW WHEN (NEW.{tenant} IS NULL)
    EXECUTE FUNCTION tenancy_runbook.place_workspace();
CREATE OR REPLACE TRIGGER tenancy_runbook_count_placements
    AFTER INSERT OR UPDATE ON {table}
    FOR EACH STATEMENT WHEN (current_setting('tenancy_runbook.pending', true) = 'on')
    EXECUTE FUNCTION tenancy_runbook.count_placements()
