-- Whether the guard counts what it does (tenancy_runbook.guard_placements, made by
-- backfill/guard.sql). Looked up in pg_class, which needs no USAGE on the schema.
SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'tenancy_runbook' AND c.relname = 'guard_placements') AS present
