-- The runbook's own record of applied migrations, for databases without _prisma_migrations.
{include common/runbook_schema}
CREATE TABLE IF NOT EXISTS tenancy_runbook.applied_migrations (
    migration_name TEXT PRIMARY KEY,
    checksum       TEXT NOT NULL,
    applied_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    run_id         TEXT
);
