-- The runbook's own record of applied migrations, for databases without _prisma_migrations.
-- (The schema is created only when absent, as in backfill/guard.sql.)
DO $$ BEGIN
    IF to_regnamespace('tenancy_runbook') IS NULL THEN CREATE SCHEMA tenancy_runbook; END IF;
END $$;
CREATE TABLE IF NOT EXISTS tenancy_runbook.applied_migrations (
    migration_name TEXT PRIMARY KEY,
    checksum       TEXT NOT NULL,
    applied_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    run_id         TEXT
);
