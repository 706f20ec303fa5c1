-- Timeouts for this transaction only (a backfill batch, a quarantine move).
SELECT set_config('lock_timeout', %(lock_timeout)s, true),
       set_config('statement_timeout', %(statement_timeout)s, true)
