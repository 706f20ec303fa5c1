-- The commands sent to this run's lock session and not taken yet, marked taken now.
UPDATE tenancy_runbook.commands
   SET seen_at = clock_timestamp()
 WHERE id IN (SELECT id FROM tenancy_runbook.commands
               WHERE seen_at IS NULL AND lock_pid = %(lock_pid)s AND lock_since = %(lock_since)s
               ORDER BY id
               FOR UPDATE SKIP LOCKED)
RETURNING id, at, run_id, action, name, value, by_user, by_host, seen_at
