-- BEFORE INSERT / UPDATE row trigger body: fill a NULL tenant column by the spec's rule for the
-- table (<branches>: one guard_branch.sql per migrated table), and tally it
-- (tenancy_runbook.placed_<table> or unplaced_<table>, and tenancy_runbook.pending: settings
-- local to the transaction, undone with it). A restore from quarantine sets
-- tenancy_runbook.restoring = 'on' so rows come back exactly as they were (not counted: the
-- runbook wrote them, not an application server).
-- SECURITY DEFINER: it runs with the runbook's role, so application roles writing rows need no
-- USAGE on schema tenancy_runbook (nor SELECT on the user and membership tables); search_path
-- is fixed. Cost per row an old server writes: one or two primary-key lookups for the rule, and
-- the tally (two settings read and written).
CREATE OR REPLACE FUNCTION tenancy_runbook.place_workspace() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
DECLARE
    tally TEXT;
BEGIN
    IF current_setting('tenancy_runbook.restoring', true) = 'on' THEN
        RETURN NEW;
    END IF;
    CASE TG_TABLE_NAME
{branches}
    ELSE
        RETURN NEW;     -- a table the spec does not declare: left as written
    END CASE;
    tally := CASE WHEN NEW.{tenant} IS NOT NULL THEN 'tenancy_runbook.placed_'
                  ELSE 'tenancy_runbook.unplaced_' END || TG_TABLE_NAME;
    PERFORM set_config(tally, (COALESCE(NULLIF(current_setting(tally, true), ''), '0')::bigint + 1)::text, true),
            set_config('tenancy_runbook.pending', 'on', true);
    RETURN NEW;
END
$fn$
