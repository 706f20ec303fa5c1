-- Whether the record of writes made outside the runner exists (none: nothing was ever recorded;
-- read without creating it, so a read-only connection can ask).
SELECT to_regclass('tenancy_runbook.interactive_writes') IS NOT NULL AS present
