-- Quarantined rows of {table} that cannot go back because a live row holds the same value of
-- one of its unique indexes (live, kept: its columns on each side; %(what)s names them, %(row)s
-- names the table in the message).
SELECT q.{key}::text AS id, 'live ' || %(row)s || ' ' || l.{key} || ' has the same (' || %(what)s || ')' AS problem
FROM {quarantine} q
JOIN {table} l ON l.{key} <> q.{key} AND ({live}) = ({kept})
WHERE %(run_id)s = '' OR q."run_id" = %(run_id)s
