-- The run's own sessions (its kernels' connections carry "tenancy-runbook <run id>" in
-- application_name), this one excepted: cancel what they are running, or end them.
-- Cancelling or terminating a session of the same role needs no extra privilege.
SELECT pid, state,
       CASE WHEN %(terminate)s THEN pg_terminate_backend(pid) ELSE pg_cancel_backend(pid) END AS signalled
FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %(application_name)s
  AND pid <> pg_backend_pid()
  AND (%(terminate)s OR state = 'active')
