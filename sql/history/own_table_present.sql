SELECT to_regclass('tenancy_runbook.applied_migrations') IS NOT NULL AS present
