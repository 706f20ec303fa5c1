-- Synthetic Data Hub data, deterministic, sized and made messy by the datahub_seed.* options
-- (set by sql/demo/set_option.sql). Users are numbered:
--   1 .. users                    regular users, each OWNER of workspace ws_<n>
--     pairs (1,2), (3,4) ... up to shared_pairs: the second user's default workspace is the
--     first user's (a shared workspace); in the first `collisions` pairs both users
--     connected the same providers, so their connections collide on (workspaceId, provider)
--     the last users_without_default users have no default workspace (the OWNER rule applies)
--   then `orphans` users        no default workspace and OWNER of none (MEMBER of ws_1)
--   then `ambiguous` users      no default workspace and OWNER of two workspaces

CREATE TEMP TABLE seed_opt ON COMMIT DROP AS
SELECT current_setting('datahub_seed.users')::int                   AS users,
       current_setting('datahub_seed.orphans')::int                 AS orphans,
       current_setting('datahub_seed.ambiguous')::int               AS ambiguous,
       current_setting('datahub_seed.users_without_default')::int   AS users_without_default,
       current_setting('datahub_seed.shared_pairs')::int            AS shared_pairs,
       current_setting('datahub_seed.collisions')::int              AS collisions,
       current_setting('datahub_seed.connections_per_user')::int    AS connections_per_user,
       current_setting('datahub_seed.metric_days')::int             AS metric_days,
       current_setting('datahub_seed.metrics_per_day')::int         AS metrics_per_day,
       current_setting('datahub_seed.insights_per_user')::int       AS insights_per_user,
       current_setting('datahub_seed.messages_per_user')::int       AS messages_per_user,
       ARRAY['google_analytics', 'stripe', 'shopify', 'meta_ads']   AS providers,
       ARRAY['sessions', 'revenue', 'orders', 'users', 'conversions'] AS metrics;

CREATE TEMP TABLE seed_user ON COMMIT DROP AS
SELECT u.*,
       -- providers: partners in a colliding pair connect the same ones, other partners disjoint ones
       CASE u.pairing WHEN 'apart' THEN o.connections_per_user WHEN 'same' THEN 0 ELSE u.n % 4 END AS provider_offset
FROM seed_opt o, (
{include demo/seed_users}
) AS u;

INSERT INTO "Workspace" ("id", "name")
SELECT 'ws_' || n, 'Workspace ' || n FROM seed_user WHERE kind <> 'orphan'
UNION ALL
SELECT 'ws_' || n || '_b', 'Second workspace ' || n FROM seed_user WHERE kind = 'ambiguous';

INSERT INTO "User" ("id", "email", "defaultWorkspaceId")
SELECT id, 'user' || n || '@example.com', default_ws FROM seed_user;

INSERT INTO "WorkspaceMember" ("workspaceId", "userId", "role")
{include demo/seed_memberships}
UNION ALL
SELECT 'ws_1', id, 'MEMBER'::"WorkspaceRole" FROM seed_user WHERE kind = 'orphan'
  AND EXISTS (SELECT 1 FROM "Workspace" WHERE "id" = 'ws_1');

INSERT INTO "Connection" ("id", "userId", "provider", "status", "accessToken", "createdAt", "updatedAt")
SELECT 'conn_' || u.n || '_' || k,
       u.id,
       o.providers[(u.provider_offset + k) % 4 + 1],
       CASE WHEN (u.n + k) % 7 = 0 THEN 'error' ELSE 'active' END,
       'tok_' || md5(u.id || k),
       TIMESTAMP '2025-01-01' + (u.n * 10 + k) * INTERVAL '1 minute',
       TIMESTAMP '2025-06-01' + (u.n * 10 + k) * INTERVAL '1 minute'
FROM seed_opt o, seed_user u, generate_series(0, o.connections_per_user - 1) AS k;

INSERT INTO "MetricDaily" ("id", "connectionId", "date", "metric", "value")
SELECT 'md_' || c."id" || '_' || d || '_' || m,
       c."id",
       DATE '2025-01-01' + d,
       o.metrics[m],
       ((length(c."id") * 31 + d * 7 + m * 13) % 1000)::double precision
FROM seed_opt o, "Connection" c, generate_series(0, o.metric_days - 1) AS d,
     generate_series(1, o.metrics_per_day) AS m;

INSERT INTO "Insight" ("id", "userId", "connectionId", "title", "body")
SELECT 'ins_' || u.n || '_' || j,
       u.id,
       CASE WHEN j % 2 = 1 AND o.connections_per_user > 0
            THEN 'conn_' || u.n || '_' || ((j / 2) % o.connections_per_user) END,
       'Insight ' || j,
       'Generated insight ' || j || ' for ' || u.id
FROM seed_opt o, seed_user u, generate_series(1, o.insights_per_user) AS j;

INSERT INTO "ChatMessage" ("id", "userId", "role", "content", "createdAt")
SELECT 'msg_' || u.n || '_' || j,
       u.id,
       CASE WHEN j % 2 = 1 THEN 'user' ELSE 'assistant' END,
       'Message ' || j,
       TIMESTAMP '2025-03-01' + (u.n * 100 + j) * INTERVAL '1 second'
FROM seed_opt o, seed_user u, generate_series(1, o.messages_per_user) AS j;
