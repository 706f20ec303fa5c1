-- The transition guard's functions. While the rollout runs, application servers of the old
-- version keep writing rows without a workspaceId; a trigger on each table (guard_trigger.sql)
-- places them by the backfill rule as they are written. Removed by stage 60_remove_guard.
-- search_path is fixed to the schema the Data Hub tables are in when this runs.
-- Created only when absent: CREATE SCHEMA IF NOT EXISTS would need CREATE on the database even
-- when an administrator has created the schema (and granted USAGE, CREATE on it) beforehand.
DO $$ BEGIN
    IF to_regnamespace('tenancy_runbook') IS NULL THEN CREATE SCHEMA tenancy_runbook; END IF;
END $$;

-- The backfill rule for one user, written per row for the trigger's sake: the same rule as
-- sql/common/user_workspace.sql (the set-based form the checks include), kept apart because
-- this form looks WorkspaceMember up only for users without a default workspace (about 3.5x
-- faster per row). tests/test_backfill.py checks both give every user the same answer.
-- NULL when there is no single answer (orphan, ambiguous).
CREATE OR REPLACE FUNCTION tenancy_runbook.user_workspace(user_id TEXT) RETURNS TEXT
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $fn$
    SELECT COALESCE(
        (SELECT "defaultWorkspaceId" FROM "User" WHERE "id" = user_id),
        (SELECT min("workspaceId") FROM "WorkspaceMember"
          WHERE "userId" = user_id AND "role" = 'OWNER'
         HAVING count(*) = 1))
$fn$;

-- BEFORE INSERT / UPDATE trigger body: fill a NULL workspaceId by the rule. A restore from
-- quarantine sets tenancy_runbook.restoring = 'on' so rows come back exactly as they were.
-- SECURITY DEFINER: it runs with the runbook's role, so application roles writing rows need no
-- USAGE on schema tenancy_runbook (nor SELECT on User, WorkspaceMember); search_path is fixed.
CREATE OR REPLACE FUNCTION tenancy_runbook.place_workspace() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
BEGIN
    IF NEW."workspaceId" IS NOT NULL
       OR current_setting('tenancy_runbook.restoring', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'MetricDaily' THEN
        NEW."workspaceId" := (SELECT c."workspaceId" FROM "Connection" c WHERE c."id" = NEW."connectionId");
    ELSIF TG_TABLE_NAME = 'Insight' THEN
        IF NEW."connectionId" IS NOT NULL THEN
            NEW."workspaceId" := (SELECT c."workspaceId" FROM "Connection" c WHERE c."id" = NEW."connectionId");
        ELSE
            NEW."workspaceId" := tenancy_runbook.user_workspace(NEW."userId");
        END IF;
    ELSE  -- Connection, ChatMessage
        NEW."workspaceId" := tenancy_runbook.user_workspace(NEW."userId");
    END IF;
    RETURN NEW;
END
$fn$;
