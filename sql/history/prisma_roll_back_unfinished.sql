-- As `prisma migrate resolve --applied` does: unfinished earlier attempts are marked rolled back.
UPDATE "_prisma_migrations"
SET rolled_back_at = now()
WHERE migration_name = %(name)s AND finished_at IS NULL AND rolled_back_at IS NULL
