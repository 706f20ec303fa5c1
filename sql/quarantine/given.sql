-- The innermost level of quarantine/move_under.sql: the given keys.
SELECT unnest(%(ids)s::text[])
