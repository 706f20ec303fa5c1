-- The guard's functions. The schema stays when it keeps the runbook's record of migrations.
DROP FUNCTION IF EXISTS tenancy_runbook.place_workspace();
DROP FUNCTION IF EXISTS tenancy_runbook.count_placements();
DROP FUNCTION IF EXISTS tenancy_runbook.user_workspace(TEXT);
