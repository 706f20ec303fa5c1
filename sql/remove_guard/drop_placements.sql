-- The guard's counts go with it (after its triggers and functions: nothing writes them any more).
DROP TABLE IF EXISTS tenancy_runbook.guard_placements
