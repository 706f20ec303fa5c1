-- One run at a time per database: a session advisory lock (advisory locks are per database).
-- Taken, it lasts until this session ends (a rolled-back transaction does not release it);
-- not available, the answer is false at once: nobody waits.
SELECT pg_try_advisory_lock(%(classid)s, %(objid)s) AS acquired
