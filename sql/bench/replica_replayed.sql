-- Whether the bench's replica (application_name %(name)s) has replayed the WAL up to %(lsn)s (a
-- position from bench/wal_position.sql). Up to a WAL page header (40 bytes) short counts: when
-- the last record ends at a page boundary the insert position points past the next page's
-- header, which no record fills until more WAL is written.
SELECT coalesce(bool_or(pg_wal_lsn_diff(%(lsn)s::pg_lsn, replay_lsn) <= 40), false) AS replayed
FROM pg_stat_replication
WHERE application_name = %(name)s
