-- The run's sessions still connected (after its kernels ended, none should be).
SELECT pid, state, left(regexp_replace(query, '\s+', ' ', 'g'), 200) AS query
FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %(application_name)s
  AND pid <> pg_backend_pid()
