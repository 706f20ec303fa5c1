-- The last migration the runbook recorded whose name matches a regular expression.
SELECT migration_name AS name, checksum FROM tenancy_runbook.applied_migrations
WHERE migration_name ~ %(pattern)s
ORDER BY migration_name DESC LIMIT 1
