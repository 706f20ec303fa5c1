-- The progress rows of the runs that reported most recently, each run's tables in the order it
-- started them, with the server's clock (how old each report is).
SELECT run_id, "table", host, pid, started_at, updated_at, rows_total, rows_done, rows_per_s,
       batch_size, workers, state, clock_timestamp() AS now
FROM tenancy_runbook.progress
WHERE run_id IN (SELECT run_id FROM tenancy_runbook.progress
                  GROUP BY run_id ORDER BY max(updated_at) DESC LIMIT %(runs)s)
ORDER BY run_id, started_at, "table"
