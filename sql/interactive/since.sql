-- The writes made outside the runner that began after a point in time (NULL: all), oldest first.
SELECT id, at, ended_at, stage, run_id, db_user, os_user, host, pid, changed
FROM tenancy_runbook.interactive_writes
WHERE %(after)s::timestamptz IS NULL OR at > %(after)s::timestamptz
ORDER BY at, id
