-- (Included by the statements that create the runbook's own tables.) The schema tenancy_runbook,
-- created only when absent: CREATE SCHEMA IF NOT EXISTS would need CREATE on the database even
-- when an administrator has created the schema (and granted USAGE, CREATE on it) beforehand.
DO $$ BEGIN
    IF to_regnamespace('tenancy_runbook') IS NULL THEN CREATE SCHEMA tenancy_runbook; END IF;
END $$;
