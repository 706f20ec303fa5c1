-- The commands sent to a run (as its lock label names it) while its lock sessions held the
-- lock: since the first of them began (an earlier run of the same name had earlier sessions).
SELECT id, at, action, name, value, by_user, by_host, seen_at
FROM tenancy_runbook.commands
WHERE run_id = %(run_id)s AND lock_since >= %(since)s
ORDER BY id
