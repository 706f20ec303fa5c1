-- A run's events, in the order they were recorded (after_id: only those recorded since).
SELECT id, at, kind, "table", detail, seconds
FROM tenancy_runbook.events
WHERE run_id = %(run_id)s AND id > %(after_id)s
ORDER BY id
