-- A writing stage run outside the runner, confirmed, is about to write: who (the login role, and
-- the role it acts as when SET ROLE changed it; the OS user and host of the kernel, and its
-- address as this server sees it: none on a local socket), when, which stage, which run id.
INSERT INTO tenancy_runbook.interactive_writes (stage, run_id, db_user, os_user, host, pid)
VALUES (%(stage)s, %(run_id)s,
        CASE WHEN current_user = session_user THEN session_user::text
             ELSE session_user::text || ' (as ' || current_user::text || ')' END,
        %(os_user)s, %(host)s || coalesce(' (' || host(inet_client_addr()) || ')', ''), %(pid)s)
RETURNING id, at, stage, run_id, db_user, os_user, host, pid
