-- The transition guard comes off one table (a moment's SHARE ROW EXCLUSIVE lock).
DROP TRIGGER IF EXISTS tenancy_runbook_place_workspace ON {table};
DROP TRIGGER IF EXISTS tenancy_runbook_count_placements ON {table}
