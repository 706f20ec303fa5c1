-- Quarantined rows of {table} that cannot go back: their id is live again, or (Connection)
-- their (userId, provider) or (workspaceId, provider) is taken by a live connection.
SELECT q."id", 'id is live again' AS problem
FROM {quarantine} q JOIN {table} l ON l."id" = q."id"
WHERE %(run_id)s = '' OR q."run_id" = %(run_id)s
