-- The last migration recorded as applied (finished, not rolled back) whose name matches a
-- regular expression; by name, which starts with its UTC timestamp.
SELECT migration_name AS name, checksum FROM "_prisma_migrations"
WHERE migration_name ~ %(pattern)s AND finished_at IS NOT NULL AND rolled_back_at IS NULL
ORDER BY migration_name DESC LIMIT 1
