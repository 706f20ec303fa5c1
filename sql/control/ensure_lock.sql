-- One control/ensure at a time (until its transaction ends): two CREATE TABLE IF NOT EXISTS at
-- once can both try to create the table. A key of its own, not the run lock's.
SELECT pg_advisory_xact_lock(%(classid)s, %(objid)s)
