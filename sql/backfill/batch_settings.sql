-- Settings for one backfill batch, this transaction only: how long it may wait for a row lock
-- and run, and synchronous_commit off: the commit does not wait for its WAL flush. Safe here:
-- a crash can lose only the last batches' commits (at most about 3 x wal_writer_delay), their
-- rows are NULL again, and a re-run of the stage (which touches only NULL rows) redoes them.
SELECT set_config('lock_timeout', %(lock_timeout)s, true),
       set_config('statement_timeout', %(statement_timeout)s, true),
       set_config('synchronous_commit', 'off', true)
