-- The quarantine table for one source table: datahub_quarantine.{table}, same name and
-- columns as the source, plus why, by which run and when each row was moved there.
CREATE SCHEMA IF NOT EXISTS datahub_quarantine;
CREATE TABLE IF NOT EXISTS datahub_quarantine.{table} (LIKE {table});
ALTER TABLE datahub_quarantine.{table}
    ADD COLUMN IF NOT EXISTS "reason" TEXT,
    ADD COLUMN IF NOT EXISTS "run_id" TEXT,
    ADD COLUMN IF NOT EXISTS "quarantined_at" TIMESTAMPTZ;
