-- The quarantine table for one source table: datahub_quarantine.{table}, same name and
-- columns as the source, plus why, by which run and when each row was moved there.
-- The schema is created only when absent (IF NOT EXISTS would need CREATE on the database even
-- when an administrator has created it beforehand).
DO $$ BEGIN
    IF to_regnamespace('datahub_quarantine') IS NULL THEN CREATE SCHEMA datahub_quarantine; END IF;
END $$;
CREATE TABLE IF NOT EXISTS datahub_quarantine.{table} (LIKE {table});
ALTER TABLE datahub_quarantine.{table}
    ADD COLUMN IF NOT EXISTS "reason" TEXT,
    ADD COLUMN IF NOT EXISTS "run_id" TEXT,
    ADD COLUMN IF NOT EXISTS "quarantined_at" TIMESTAMPTZ;
