-- The runbook's settings for one transaction (local = true: they end with it, so nothing stays on
-- a session a pooler may hand to another client), or, only around a CONCURRENTLY statement that
-- cannot run in a transaction block, for the session until the RESET that follows it.
SELECT set_config(s.name, s.value, %(local)s)
FROM unnest(%(names)s::text[], %(values)s::text[]) AS s(name, value)
