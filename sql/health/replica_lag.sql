-- How far the standbys streaming from this server are behind, in bytes of WAL: this server's
-- current WAL position minus the position each standby has replayed (replay_lsn; a standby
-- reports it whenever it writes, and at least every wal_receiver_status_interval, 10s by
-- default). The worst standby counts: the one serving the stalest reads, or the one a failover
-- would have to catch up.
-- Visibility: every role sees one row per WAL sender, but replay_lsn (and state) only superusers,
-- members of pg_read_all_stats (which pg_monitor includes) and the role the standby connects as.
-- For any other role standbys > 0, visible = 0 and lag_bytes is NULL: the backfill says
-- so (GRANT pg_monitor TO the runbook's role) instead of taking it for "no lag".
-- Not counted: logical replication senders (their slot is of type logical: subscriptions and
-- change-data-capture consumers, whose backlog is not a standby's replay) and pg_basebackup's
-- senders (state 'backup').
-- Cheap: no catalog scan, a handful of rows; it runs at most once a second during a backfill.
SELECT count(*)::int AS standbys,
       count(r.replay_lsn)::int AS visible,
       max(pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn))::bigint AS lag_bytes
FROM pg_stat_replication r
WHERE r.state IS DISTINCT FROM 'backup'
  AND NOT EXISTS (SELECT FROM pg_replication_slots s
                  WHERE s.active_pid = r.pid AND s.slot_type = 'logical')
