-- The backfill's progress on one table (one row per run and table, rewritten).
INSERT INTO tenancy_runbook.progress AS p
       (run_id, "table", host, pid, rows_total, rows_done, rows_per_s, batch_size, workers, state)
VALUES (%(run_id)s, %(table)s, %(host)s, %(pid)s, %(rows_total)s, %(rows_done)s, %(rows_per_s)s,
        %(batch_size)s, %(workers)s, %(state)s)
ON CONFLICT (run_id, "table") DO UPDATE
   SET host = EXCLUDED.host, pid = EXCLUDED.pid, updated_at = clock_timestamp(),
       rows_total = EXCLUDED.rows_total, rows_done = EXCLUDED.rows_done, rows_per_s = EXCLUDED.rows_per_s,
       batch_size = EXCLUDED.batch_size, workers = EXCLUDED.workers, state = EXCLUDED.state
