INSERT INTO tenancy_runbook.applied_migrations (migration_name, checksum, run_id)
VALUES (%(name)s, %(checksum)s, %(run_id)s)
ON CONFLICT (migration_name) DO NOTHING
