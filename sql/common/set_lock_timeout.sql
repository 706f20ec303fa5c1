-- How long a DDL statement may wait for its lock before giving up (this transaction only).
SELECT set_config('lock_timeout', %(lock_timeout)s, true)
