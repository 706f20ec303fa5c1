-- The guard on one table: rows written without a workspaceId get one by the rule.
-- (SHARE ROW EXCLUSIVE on the table for a moment; waited for at most lock_timeout.)
CREATE OR REPLACE TRIGGER tenancy_runbook_place_workspace
    BEFORE INSERT OR UPDATE ON {table}
    FOR EACH ROW WHEN (NEW."workspaceId" IS NULL)
    EXECUTE FUNCTION tenancy_runbook.place_workspace()
