-- The bench's own streaming replica (application_name %(name)s: other replicas of a shared
-- server are not counted): how many bytes of WAL it is behind in replaying, as the primary sees
-- it (the measure health/replica_lag.sql takes for the throttle). NULL while it is not connected.
-- The standby reports its replay position whenever it receives WAL, and at least every second.
SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::bigint AS lag_bytes
FROM pg_stat_replication
WHERE application_name = %(name)s
