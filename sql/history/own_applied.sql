SELECT count(*) > 0 AS applied
FROM tenancy_runbook.applied_migrations
WHERE migration_name = %(name)s
