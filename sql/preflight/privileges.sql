-- Every privilege the run will need, whether the current role holds it, and the statement that
-- gives it when it does not (run as a superuser or the object's owner). "optional" ones do not
-- stop the run.
-- Tables are found on the session's search_path (to_regclass(quote_ident(name))), so the app's
-- tables may live in any schema; the runbook's own schemas (tenancy_runbook, the spec's quarantine) are
-- looked up in pg_namespace, which needs no USAGE on them.
-- Ownership (ALTER TABLE, CREATE INDEX, CREATE TRIGGER, ANALYZE, CREATE OR REPLACE / DROP
-- FUNCTION all need it) is held by the owner and by members of the owner role; a superuser owner
-- is not offered as a role to join (membership would let the runner become superuser): the fix
-- is then ALTER ... OWNER TO.
-- Parameters: tenant (the spec's tables), read (the tables the rule and the checks read),
-- tenant_table and tenant_column (the spec's tenant table and column), build_indexes (an index of
-- migration 1 is still to be built), add_foreign_keys (a foreign key of migration 1 is still to be
-- added), quarantine (rows may be moved to quarantine_schema, the spec's).
WITH me AS (
    SELECT current_user AS runner, current_database() AS dbname
),
runbook_schemas AS (
    SELECT s.name, s.needed, s.why, n.oid AS nsp, n.nspowner
    FROM (VALUES
        ('tenancy_runbook', true,
         'the guard''s functions (20); applied_migrations when there is no _prisma_migrations (10, 40)'),
        (%(quarantine_schema)s::text, %(quarantine)s::boolean,
         'the quarantined rows (20)')
    ) AS s(name, needed, why)
    LEFT JOIN pg_namespace n ON n.nspname = s.name
),
tenant AS (
    SELECT x.i, c.oid, n.nspname, c.relname, c.relowner, c.relnamespace
    FROM unnest(%(tenant)s::text[]) WITH ORDINALITY AS x(t, i)
    JOIN pg_class c ON c.oid = to_regclass(quote_ident(x.t))
    JOIN pg_namespace n ON n.oid = c.relnamespace
),
read AS (
    SELECT x.i, c.oid, n.nspname, c.relname
    FROM unnest(%(read)s::text[]) WITH ORDINALITY AS x(t, i)
    JOIN pg_class c ON c.oid = to_regclass(quote_ident(x.t))
    JOIN pg_namespace n ON n.oid = c.relnamespace
),
prisma AS (
    SELECT c.oid, n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = to_regclass(quote_ident('_prisma_migrations'))
),
record AS (   -- where the applied migrations are recorded, and what recording them takes
    SELECT oid, nspname, relname, ARRAY['SELECT', 'INSERT', 'UPDATE'] AS privs FROM prisma
    UNION ALL   -- the runbook's own record, used only without _prisma_migrations
    SELECT c.oid, n.nspname, c.relname, ARRAY['SELECT', 'INSERT']
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'tenancy_runbook' AND c.relname = 'applied_migrations'
      AND NOT EXISTS (SELECT FROM prisma)
),
owned AS (   -- objects the run alters, replaces or drops
    SELECT 10 AS ord, i AS sub, 'TABLE' AS kind, format('%%I.%%I', nspname, relname) AS name, relowner AS owner,
           'ADD COLUMN, CREATE INDEX, foreign keys (10); the guard trigger, ANALYZE (20); '
           || 'NOT NULL (40); DROP TRIGGER (60)' AS why
    FROM tenant
    UNION ALL
    SELECT 60, row_number() OVER (ORDER BY p.proname), 'FUNCTION', p.oid::regprocedure::text, p.proowner,
           'CREATE OR REPLACE FUNCTION (20), DROP FUNCTION (60): it exists already'
    FROM pg_proc p JOIN runbook_schemas s ON s.nsp = p.pronamespace
    WHERE s.name = 'tenancy_runbook' AND p.proname IN ('user_workspace', 'place_workspace', 'count_placements')
    UNION ALL   -- the guard's counts: written by its functions, dropped by 60
    SELECT 65, 0, 'TABLE', format('%%I.%%I', s.name, c.relname), c.relowner,
           'the guard counts into it (20), DROP TABLE (60): it exists already'
    FROM pg_class c JOIN runbook_schemas s ON s.nsp = c.relnamespace
    WHERE s.name = 'tenancy_runbook' AND c.relname = 'guard_placements' AND c.relkind = 'r'
    UNION ALL
    SELECT 70, row_number() OVER (ORDER BY c.relname), 'TABLE', format('%%I.%%I', s.name, c.relname), c.relowner,
           'ALTER TABLE ... ADD COLUMN IF NOT EXISTS (20): it exists already'
    FROM pg_class c JOIN runbook_schemas s ON s.nsp = c.relnamespace
    WHERE s.name = %(quarantine_schema)s::text AND s.needed AND c.relkind = 'r'
      AND c.relname = ANY(%(tenant)s::text[])
),
needs AS (
    -- ownership
    SELECT o.ord, o.sub, lower(o.kind) || ' ' || o.name AS object,
           format('owner (%%s)', pg_get_userbyid(o.owner)) AS privilege,
           pg_has_role(me.runner, o.owner, 'USAGE') AS held, false AS optional,
           CASE WHEN r.rolsuper THEN format('ALTER %%s %%s OWNER TO %%I;', o.kind, o.name, me.runner)
                ELSE format('GRANT %%I TO %%I;', r.rolname, me.runner) END AS "grant",
           o.why AS needed_for
    FROM owned o CROSS JOIN me JOIN pg_roles r ON r.oid = o.owner
    UNION ALL
    -- CREATE INDEX checks CREATE on the schema the index goes in (its table's), owner or not
    SELECT 20, 0, format('schema %%I', t.nspname), 'CREATE',
           has_schema_privilege(me.runner, t.relnamespace, 'CREATE'), false,
           format('GRANT CREATE ON SCHEMA %%I TO %%I;', t.nspname, me.runner),
           'CREATE INDEX CONCURRENTLY: the indexes of migration 1 (10)'
    FROM (SELECT DISTINCT nspname, relnamespace FROM tenant) t CROSS JOIN me
    WHERE %(build_indexes)s::boolean
    UNION ALL
    SELECT 30, r.i, format('table %%I.%%I', r.nspname, r.relname), 'SELECT',
           has_table_privilege(me.runner, r.oid, 'SELECT'), false,
           format('GRANT SELECT ON TABLE %%I.%%I TO %%I;', r.nspname, r.relname, me.runner),
           CASE WHEN r.relname = %(tenant_table)s::text
                THEN 'VALIDATE CONSTRAINT checks the foreign keys in one query, not row by row (10)'
                ELSE 'the backfill rule: preflight, the backfill, the guard and the checks read it (00-50)' END
    FROM read r CROSS JOIN me
    UNION ALL
    SELECT 31, r.i, format('table %%I.%%I', r.nspname, r.relname), 'REFERENCES',
           has_table_privilege(me.runner, r.oid, 'REFERENCES'), false,
           format('GRANT REFERENCES ON TABLE %%I.%%I TO %%I;', r.nspname, r.relname, me.runner),
           format('ADD CONSTRAINT ... FOREIGN KEY (%%I) REFERENCES it (10)', %(tenant_column)s::text)
    FROM read r CROSS JOIN me
    WHERE r.relname = %(tenant_table)s::text AND %(add_foreign_keys)s::boolean
    UNION ALL
    -- the runbook's schemas: created (CREATE on the database) or, when an administrator has
    -- created them beforehand, used (USAGE, CREATE on them)
    SELECT 40, row_number() OVER (ORDER BY s.name), format('database %%I', me.dbname), 'CREATE',
           has_database_privilege(me.runner, me.dbname, 'CREATE'), false,
           format('GRANT CREATE ON DATABASE %%I TO %%I;', me.dbname, me.runner),
           format('CREATE SCHEMA %%I: %%s', s.name, s.why)
    FROM runbook_schemas s CROSS JOIN me
    WHERE s.needed AND s.nsp IS NULL
    UNION ALL
    SELECT 50, row_number() OVER (ORDER BY s.name, p.i), format('schema %%I', s.name), p.priv,
           has_schema_privilege(me.runner, s.nsp, p.priv), false,
           format('GRANT %%s ON SCHEMA %%I TO %%I;', p.priv, s.name, me.runner),
           format('%%s (the schema exists already)', s.why)
    FROM runbook_schemas s CROSS JOIN me
    CROSS JOIN (VALUES (1, 'USAGE'), (2, 'CREATE')) AS p(i, priv)
    WHERE s.needed AND s.nsp IS NOT NULL
    UNION ALL
    SELECT 80, p.i, format('table %%I.%%I', t.nspname, t.relname), p.priv,
           has_table_privilege(me.runner, t.oid, p.priv), false,
           format('GRANT %%s ON TABLE %%I.%%I TO %%I;', p.priv, t.nspname, t.relname, me.runner),
           'the migrations the runbook applies are recorded there (10, 40)'
    FROM record t CROSS JOIN me
    CROSS JOIN unnest(t.privs) WITH ORDINALITY AS p(priv, i)
    UNION ALL
    -- optional: the run goes on without them
    SELECT 90, 1, 'function pg_catalog.pg_control_system()', 'EXECUTE',
           has_function_privilege(me.runner, 'pg_catalog.pg_control_system()'::text, 'EXECUTE'), true,
           format('GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO %%I;', me.runner),
           'optional: the server''s system_identifier in manifest.json (else recorded as not '
           || 'permitted; PUBLIC may run it unless a managed service revoked it)'
    FROM me
    UNION ALL
    -- roles: pg_read_all_stats; pg_monitor only while standbys stream from this server (their
    -- replay position is what max_replica_lag watches, and only pg_read_all_stats, in
    -- pg_monitor, shows it)
    SELECT 90, r.sub, format('role %%s', r.role), 'member',
           pg_has_role(me.runner, 'pg_read_all_stats'::name, 'USAGE'), true,
           format('GRANT %%s TO %%I;', r.role, me.runner), r.why
    FROM me CROSS JOIN (VALUES
        (2, 'pg_read_all_stats', 'optional: the query text of other roles'' sessions when a lock wait '
                                 || 'names the blockers (else <insufficient privilege>)', true),
        (3, 'pg_monitor', format('optional: the replay lag of the %%s standby(s) streaming from this server, '
                                 || 'which max_replica_lag watches during the backfill (else it cannot be '
                                 || 'read: the backfill says so and does not wait for them), and whether a '
                                 || 'VACUUM on a table is autovacuum''s (20)',
                                 (SELECT count(*) FROM pg_stat_replication)),
         EXISTS (SELECT FROM pg_stat_replication))
    ) AS r(sub, role, why, asked)
    WHERE r.asked
)
SELECT object, privilege, held, optional, CASE WHEN NOT held THEN "grant" END AS "grant", needed_for
FROM needs
ORDER BY ord, sub, object, privilege
