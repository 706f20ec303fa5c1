-- The row `prisma migrate resolve --applied` writes: a UUIDv4 id, the sha256 of migration.sql,
-- started_at = finished_at = now, empty logs, applied_steps_count 0.
INSERT INTO "_prisma_migrations"
    (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
VALUES (%(id)s, %(checksum)s, now(), %(name)s, '', NULL, now(), 0)
