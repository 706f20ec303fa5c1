-- What one quarantine table holds, per run and reason.
SELECT %(table)s AS "table", "run_id", "reason", count(*) AS "rows"
FROM {quarantine}
GROUP BY "run_id", "reason"
ORDER BY "run_id", "reason"
