-- The stage's writes are done: what it changed, in short.
UPDATE tenancy_runbook.interactive_writes
   SET ended_at = clock_timestamp(), changed = %(changed)s
 WHERE id = %(id)s
RETURNING id, at, ended_at, stage, run_id, db_user, os_user, host, pid, changed
