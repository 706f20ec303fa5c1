-- Who holds the runbook's advisory lock in this database: the holder's session carries its
-- identity in application_name ("tenancy-runbook lock <run id> <pid>@<host>"), and the
-- session's start is when it took the lock. Nothing is written to take or to describe it.
SELECT a.pid AS backend_pid, a.application_name, a.backend_start, a.usename AS "user",
       host(a.client_addr) AS client_addr
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %(classid)s::oid AND l.objid = %(objid)s::oid AND l.objsubid = 2
