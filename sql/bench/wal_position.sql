-- The server's WAL insert position now (cluster-wide): where the WAL a measured step writes
-- starts, or ends. The insert position, not pg_current_wal_lsn() (the write position): batches
-- commit with synchronous_commit off, so the last ones' WAL may not be written out yet when the
-- backfill returns, and would otherwise be missed.
SELECT pg_current_wal_insert_lsn()::text AS lsn
