-- Commands sent to a lock session that the backfill has not taken yet.
SELECT id, at, action, name, value, by_user, by_host
FROM tenancy_runbook.commands
WHERE seen_at IS NULL AND lock_pid = %(lock_pid)s AND lock_since = %(lock_since)s
ORDER BY id
