-- The transition guard's functions. While the rollout runs, application servers of the old
-- version keep writing rows without a workspaceId; a trigger on each table (guard_trigger.sql)
-- places them by the backfill rule as they are written, and counts them. The guard stays on
-- after the runbook (old servers may still write); runbooks/finish.yaml (60_remove_guard)
-- removes it once it has counted no such row for quiet_period.
-- search_path is fixed to the schema the Data Hub tables are in when this runs.
-- Created only when absent: CREATE SCHEMA IF NOT EXISTS would need CREATE on the database even
-- when an administrator has created the schema (and granted USAGE, CREATE on it) beforehand.
DO $$ BEGIN
    IF to_regnamespace('tenancy_runbook') IS NULL THEN CREATE SCHEMA tenancy_runbook; END IF;
END $$;

-- What the guard did: rows it placed, rows it could not place (the rule has no answer: they
-- stay NULL, which NOT NULL then rejects), and when it last did either. 60_remove_guard reads
-- it: a row the guard handled is a row an old application server wrote.
-- One row per (table, backend) the trigger ran in, never one row per table: the trigger runs
-- inside the application's own insert transactions, and a single counter row per table would
-- be row-locked by every such insert until its commit, serializing all old-server writers on
-- it. A backend runs one transaction at a time, so its own row is never contended; a pid that
-- is reused later just adds to the same row (the key only spreads the writes). The counts are
-- transactional: an insert that rolls back (a NOT NULL failure included) is not counted.
-- Logged (not UNLOGGED), so a crash or a failover does not reset it to "quiet".
-- backend_pid 0, table '*': the marker of when the guard began counting (kept on re-install).
CREATE TABLE IF NOT EXISTS tenancy_runbook.guard_placements (
    table_name  TEXT NOT NULL,
    backend_pid INT NOT NULL,
    placed      BIGINT NOT NULL DEFAULT 0,
    unplaced    BIGINT NOT NULL DEFAULT 0,
    last_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (table_name, backend_pid)
);
INSERT INTO tenancy_runbook.guard_placements (table_name, backend_pid) VALUES ('*', 0)
ON CONFLICT (table_name, backend_pid) DO NOTHING;

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

-- BEFORE INSERT / UPDATE trigger body: fill a NULL workspaceId by the rule, and count it. A
-- restore from quarantine sets tenancy_runbook.restoring = 'on' so rows come back exactly as
-- they were (not counted: the runbook wrote them, not an application server).
-- SECURITY DEFINER: it runs with the runbook's role, so application roles writing rows need no
-- USAGE on schema tenancy_runbook (nor SELECT on User, WorkspaceMember, nor INSERT on
-- guard_placements); search_path is fixed.
-- Cost per row an old server writes: one or two primary-key lookups for the rule, and one
-- upsert of this backend's counter row (an index probe and a heap update, no contention).
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
    INSERT INTO tenancy_runbook.guard_placements AS g (table_name, backend_pid, placed, unplaced, last_at)
    VALUES (TG_TABLE_NAME, pg_backend_pid(), (NEW."workspaceId" IS NOT NULL)::int,
            (NEW."workspaceId" IS NULL)::int, clock_timestamp())
    ON CONFLICT (table_name, backend_pid) DO UPDATE
        SET placed = g.placed + EXCLUDED.placed, unplaced = g.unplaced + EXCLUDED.unplaced,
            last_at = EXCLUDED.last_at;
    RETURN NEW;
END
$fn$;
