-- A command for the run holding the runbook's lock, written only while that very session
-- (lock_pid, lock_since) still holds it: no row when the run ended in the meantime.
-- Who sent it: the login role (and the role it acts as, when SET ROLE changed it); from where:
-- the host name the sender gives and its address as this server sees it (none: a local socket).
WITH holder AS (
{include runlock/holder}
)
INSERT INTO tenancy_runbook.commands (run_id, lock_pid, lock_since, action, name, value, by_user, by_host)
SELECT %(run_id)s, h.backend_pid, h.backend_start, %(action)s, %(name)s, %(value)s,
       CASE WHEN current_user = session_user THEN session_user::text
            ELSE session_user::text || ' (as ' || current_user::text || ')' END,
       %(host)s || coalesce(' (' || host(inet_client_addr()) || ')', '')
FROM holder h
WHERE h.backend_pid = %(lock_pid)s AND h.backend_start = %(lock_since)s
RETURNING id, at, run_id, action, name, value, by_user, by_host
