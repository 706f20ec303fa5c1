-- The quarantine table for one source table: {quarantine} (the spec's quarantine schema, the
-- source's name), same columns as the source, plus why, by which run and when each row was
-- moved there. Its schema is made first when absent (quarantine/create_schema.sql).
CREATE TABLE IF NOT EXISTS {quarantine} (LIKE {table});
ALTER TABLE {quarantine}
    ADD COLUMN IF NOT EXISTS "reason" TEXT,
    ADD COLUMN IF NOT EXISTS "run_id" TEXT,
    ADD COLUMN IF NOT EXISTS "quarantined_at" TIMESTAMPTZ;
