-- Quarantined rows of {table} that cannot go back because their key is live again. (A unique
-- index of the table: quarantine/restore_conflicts_unique.sql.)
SELECT q.{key}::text AS id, 'id is live again' AS problem
FROM {quarantine} q JOIN {table} l ON l.{key} = q.{key}
WHERE %(run_id)s = '' OR q."run_id" = %(run_id)s
