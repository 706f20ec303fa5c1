-- Session timeouts for the DDL that follows: how long it may wait for a lock, and run.
SELECT set_config('lock_timeout', %(lock_timeout)s, false),
       set_config('statement_timeout', %(statement_timeout)s, false)
