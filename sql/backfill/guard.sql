-- The transition guard's functions. While the rollout runs, application servers of the old
-- version keep writing rows without a tenant; a trigger on each table (guard_trigger.sql)
-- places them by the backfill rule as they are written, and counts them. The guard stays on
-- after the runbook (old servers may still write); runbooks/finish.yaml (60_remove_guard)
-- removes it once it has counted no such row for quiet_period.
-- search_path is fixed to the schema the migrated tables are in when this runs. The functions that
-- place a row (guard_rule.sql or guard_rule_set.sql, guard_place.sql) are made from the spec.
{include common/runbook_schema}

-- What the guard did: rows it placed, rows it could not place (the rule has no answer: they
-- stay NULL, which NOT NULL then rejects), and when it last did either. 60_remove_guard reads
-- it: a row the guard handled is a row an old application server wrote.
-- One row per (table, backend), never one row per table: the guard runs inside the
-- application's own write transactions, and a single counter row per table would be
-- row-locked by every such write until its commit, serializing all old-server writers on it.
-- A backend runs one transaction at a time, so its own row is never contended; a pid that is
-- reused later just adds to the same row (the key only spreads the writes).
-- Written once per statement, not per row: the row trigger tallies in transaction-local
-- settings, and a statement trigger (count_placements) adds the tally to this backend's row
-- in one write. (A write per row made a bulk insert quadratic: each update of the same row in
-- one transaction lengthens the chain of row versions the next lookup by key walks.)
-- The counts are transactional: a write that rolls back (a NOT NULL failure included) is not
-- counted. Logged (not UNLOGGED), so a crash or a failover does not reset it to "quiet".
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

-- AFTER INSERT / UPDATE statement trigger body (it fires only while tenancy_runbook.pending is
-- on in the transaction: see guard_trigger.sql): add this table's tally to this backend's row,
-- and clear it. pending stays on until the transaction ends: a statement on another table
-- (a cascade) may still hold a tally of its own.
-- The row is found by the ctid this transaction last gave it (tenancy_runbook.row_<table>),
-- not by its key: every update of one row in one transaction adds a version to the chain a
-- key lookup walks, so a transaction of many statements would get slower with each. The
-- upsert by key is for the first statement of a transaction (or a stale ctid).
-- Cost per statement that wrote such rows: about 20 us (measured on PostgreSQL 15).
-- SECURITY DEFINER, as above: application roles need no INSERT on guard_placements.
CREATE OR REPLACE FUNCTION tenancy_runbook.count_placements() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
DECLARE
    n_placed BIGINT := COALESCE(NULLIF(current_setting('tenancy_runbook.placed_' || TG_TABLE_NAME, true), ''), '0');
    n_unplaced BIGINT := COALESCE(NULLIF(current_setting('tenancy_runbook.unplaced_' || TG_TABLE_NAME, true), ''), '0');
    here TEXT := current_setting('tenancy_runbook.row_' || TG_TABLE_NAME, true);
    at TID;
BEGIN
    IF n_placed + n_unplaced > 0 THEN
        IF here <> '' THEN
            UPDATE tenancy_runbook.guard_placements g
            SET placed = g.placed + n_placed, unplaced = g.unplaced + n_unplaced, last_at = clock_timestamp()
            WHERE g.ctid = here::tid AND g.table_name = TG_TABLE_NAME AND g.backend_pid = pg_backend_pid()
            RETURNING g.ctid INTO at;
        END IF;
        IF at IS NULL THEN
            INSERT INTO tenancy_runbook.guard_placements AS g (table_name, backend_pid, placed, unplaced, last_at)
            VALUES (TG_TABLE_NAME, pg_backend_pid(), n_placed, n_unplaced, clock_timestamp())
            ON CONFLICT (table_name, backend_pid) DO UPDATE
                SET placed = g.placed + EXCLUDED.placed, unplaced = g.unplaced + EXCLUDED.unplaced,
                    last_at = EXCLUDED.last_at
            RETURNING g.ctid INTO at;
        END IF;
        PERFORM set_config('tenancy_runbook.placed_' || TG_TABLE_NAME, '', true),
                set_config('tenancy_runbook.unplaced_' || TG_TABLE_NAME, '', true),
                set_config('tenancy_runbook.row_' || TG_TABLE_NAME, at::text, true);
    END IF;
    RETURN NULL;
END
$fn$;
