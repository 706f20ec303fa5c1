-- Is the migration recorded as applied (finished and not rolled back)?
SELECT count(*) > 0 AS applied
FROM "_prisma_migrations"
WHERE migration_name = %(name)s AND finished_at IS NOT NULL AND rolled_back_at IS NULL
