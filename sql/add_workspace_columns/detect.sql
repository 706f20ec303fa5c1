-- Each object of migration 20251219170000_add_workspace_to_datahub_models: does it exist, and
-- is it complete (an index valid, a foreign key validated)? The schema itself is the record.
SELECT o.kind, o.tbl AS "table", o.name,
       CASE o.kind
         WHEN 'column' THEN EXISTS (
             SELECT 1 FROM pg_attribute a
             WHERE a.attrelid = to_regclass(quote_ident(o.tbl))
               AND a.attname = 'workspaceId' AND NOT a.attisdropped)
         WHEN 'index' THEN to_regclass(quote_ident(o.name)) IS NOT NULL
         WHEN 'foreign key' THEN EXISTS (
             SELECT 1 FROM pg_constraint c
             WHERE c.conname = o.name AND c.conrelid = to_regclass(quote_ident(o.tbl)))
       END AS present,
       CASE o.kind
         WHEN 'column' THEN EXISTS (
             SELECT 1 FROM pg_attribute a
             WHERE a.attrelid = to_regclass(quote_ident(o.tbl))
               AND a.attname = 'workspaceId' AND NOT a.attisdropped)
         WHEN 'index' THEN COALESCE((
             SELECT i.indisvalid AND i.indisready FROM pg_index i
             WHERE i.indexrelid = to_regclass(quote_ident(o.name))), false)
         WHEN 'foreign key' THEN COALESCE((
             SELECT c.convalidated FROM pg_constraint c
             WHERE c.conname = o.name AND c.conrelid = to_regclass(quote_ident(o.tbl))), false)
       END AS complete
FROM (VALUES
    ('column',      'Connection',  'Connection.workspaceId'),
    ('column',      'MetricDaily', 'MetricDaily.workspaceId'),
    ('column',      'Insight',     'Insight.workspaceId'),
    ('column',      'ChatMessage', 'ChatMessage.workspaceId'),
    ('index',       'Connection',  'Connection_workspaceId_provider_key'),
    ('index',       'MetricDaily', 'MetricDaily_workspaceId_date_idx'),
    ('index',       'Insight',     'Insight_workspaceId_idx'),
    ('index',       'ChatMessage', 'ChatMessage_workspaceId_createdAt_idx'),
    ('foreign key', 'Connection',  'Connection_workspaceId_fkey'),
    ('foreign key', 'MetricDaily', 'MetricDaily_workspaceId_fkey'),
    ('foreign key', 'Insight',     'Insight_workspaceId_fkey'),
    ('foreign key', 'ChatMessage', 'ChatMessage_workspaceId_fkey')
) AS o(kind, tbl, name)
