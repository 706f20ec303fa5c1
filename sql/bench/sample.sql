-- Rows the writers touch: a sample of MetricDaily ids, and connections with their user and workspace.
SELECT m."id" AS metric_id, c."id" AS connection_id, c."userId" AS user_id,
       COALESCE(u."defaultWorkspaceId", 'ws_1') AS workspace_id
FROM "MetricDaily" m TABLESAMPLE SYSTEM (%(percent)s) REPEATABLE (7)
JOIN "Connection" c ON c."id" = m."connectionId"
JOIN "User" u ON u."id" = c."userId"
LIMIT %(limit)s
