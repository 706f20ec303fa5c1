-- Put quarantined rows of {table} back exactly as they were (all runs, or one run_id).
WITH restored AS (
    DELETE FROM {quarantine} WHERE %(run_id)s = '' OR "run_id" = %(run_id)s RETURNING *
)
INSERT INTO {table} ({columns})
SELECT {columns} FROM restored
