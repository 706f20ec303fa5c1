-- The run ends: its lock is released now, before the session closes. Closing alone releases it
-- only once the server has seen the client go, a moment later, so a run (or `control`) started
-- right after could still find it held. unlock_all: ensure() may have stacked it.
SELECT pg_advisory_unlock_all()
