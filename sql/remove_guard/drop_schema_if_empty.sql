-- RESTRICT: dropped only when nothing is left in it.
DROP SCHEMA IF EXISTS tenancy_runbook RESTRICT
