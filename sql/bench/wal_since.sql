-- Bytes of WAL the server has inserted since %(since)s (a position from bench/wal_position.sql):
-- what one measured step wrote, on an otherwise idle server (autovacuum and checkpoints
-- included: the step causes them).
SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %(since)s::pg_lsn)::bigint AS bytes
