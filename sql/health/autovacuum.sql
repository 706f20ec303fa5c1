-- Every VACUUM working on the table now (normally none): its pid and phase, whether it is an
-- autovacuum worker's (NULL: this role cannot tell), and whether it is an anti-wraparound one.
-- Parameter: table, found on the session's search_path like every other statement's tables.
--
-- Where a VACUUM is seen: pg_stat_progress_vacuum has a row for each backend running one, manual
-- or autovacuum's, from start to end. pid and datid are shown to every role; relid and phase only
-- to superusers, members of pg_read_all_stats (pg_monitor includes it) and the role running it.
-- An autovacuum worker runs as no role (usesysid NULL in pg_stat_activity): without
-- pg_read_all_stats its relid, backend_type and query text are hidden too (query reads
-- '<insufficient privilege>'). The table is then found through pg_locks, which every role reads:
-- VACUUM holds SHARE UPDATE EXCLUSIVE on its table for its whole run.
-- Anti-wraparound: autovacuum says so in its query text, 'autovacuum: VACUUM [ANALYZE]
-- schema.table (to prevent wraparound)'. When the text is hidden, the test autovacuum itself
-- makes decides: the table's relfrozenxid is older than autovacuum_freeze_max_age (the table's
-- own storage parameter when lower), or its relminmxid older than
-- autovacuum_multixact_freeze_max_age; pg_class and the settings are readable by every role.
-- Our batches take ROW EXCLUSIVE, which does not conflict with VACUUM's lock: waiting is not
-- about locks but about not competing for I/O, and not making dead rows while it runs.
-- Cheap: one pg_class row by oid; pg_locks and pg_stat_activity only for a VACUUM running in
-- this database. It runs at most once a second during a backfill.
WITH target AS (
    SELECT c.oid, c.relfrozenxid, c.relminmxid, c.reloptions
    FROM pg_class c
    WHERE c.oid = to_regclass(quote_ident(%(table)s))
),
vacuums AS (
    SELECT p.pid, p.relid, p.phase
    FROM pg_stat_progress_vacuum p
    WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT v.pid,
       v.phase,
       CASE WHEN a.backend_type = 'autovacuum worker' THEN true
            WHEN a.backend_type IS NOT NULL THEN false END AS autovacuum,
       CASE WHEN a.backend_type IS NOT NULL
            THEN a.backend_type = 'autovacuum worker'
                 AND a.query LIKE 'autovacuum: VACUUM%%(to prevent wraparound)'
            ELSE age(t.relfrozenxid) > least(
                     current_setting('autovacuum_freeze_max_age')::bigint,
                     (SELECT o.option_value::bigint FROM pg_options_to_table(t.reloptions) o
                      WHERE o.option_name = 'autovacuum_freeze_max_age'))
              OR mxid_age(t.relminmxid) > least(
                     current_setting('autovacuum_multixact_freeze_max_age')::bigint,
                     (SELECT o.option_value::bigint FROM pg_options_to_table(t.reloptions) o
                      WHERE o.option_name = 'autovacuum_multixact_freeze_max_age'))
       END AS wraparound
FROM vacuums v
JOIN target t ON v.relid = t.oid
             OR (v.relid IS NULL AND EXISTS (
                    SELECT FROM pg_locks l
                    WHERE l.pid = v.pid AND l.locktype = 'relation' AND l.relation = t.oid
                      AND l.mode = 'ShareUpdateExclusiveLock' AND l.granted))
LEFT JOIN pg_stat_activity a ON a.pid = v.pid
ORDER BY v.pid
