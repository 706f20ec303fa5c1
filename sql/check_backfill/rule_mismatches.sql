-- Rows whose workspaceId disagrees with the backfill rule, per table.
--  * MetricDaily, and Insight with a connection: must equal the connection's workspaceId.
--  * Connection, ChatMessage, Insight without a connection: must be the rule's workspace,
--    or one the user belongs to (member, or default): rows the new application version
--    wrote itself may name any workspace of their user.
-- NULLs are not counted here: they are counted as NULLs.
WITH user_workspace AS (
    {include common/user_workspace}
),
belongs AS (
    SELECT "userId", "workspaceId" FROM "WorkspaceMember"
    UNION
    SELECT "id", "defaultWorkspaceId" FROM "User" WHERE "defaultWorkspaceId" IS NOT NULL
)
SELECT 'Connection' AS "table", count(*) AS mismatches
FROM "Connection" c
LEFT JOIN user_workspace uw ON uw."userId" = c."userId"
WHERE c."workspaceId" IS NOT NULL
  AND c."workspaceId" IS DISTINCT FROM uw."workspaceId"
  AND NOT EXISTS (SELECT 1 FROM belongs b WHERE b."userId" = c."userId" AND b."workspaceId" = c."workspaceId")
UNION ALL
SELECT 'MetricDaily', count(*)
FROM "MetricDaily" m
JOIN "Connection" c ON c."id" = m."connectionId"
WHERE m."workspaceId" IS NOT NULL
  AND m."workspaceId" IS DISTINCT FROM c."workspaceId"
UNION ALL
SELECT 'Insight', count(*)
FROM "Insight" i
LEFT JOIN "Connection" c ON c."id" = i."connectionId"
LEFT JOIN user_workspace uw ON uw."userId" = i."userId"
WHERE i."workspaceId" IS NOT NULL
  AND CASE
        WHEN i."connectionId" IS NOT NULL THEN i."workspaceId" IS DISTINCT FROM c."workspaceId"
        ELSE i."workspaceId" IS DISTINCT FROM uw."workspaceId"
             AND NOT EXISTS (SELECT 1 FROM belongs b WHERE b."userId" = i."userId" AND b."workspaceId" = i."workspaceId")
      END
UNION ALL
SELECT 'ChatMessage', count(*)
FROM "ChatMessage" cm
LEFT JOIN user_workspace uw ON uw."userId" = cm."userId"
WHERE cm."workspaceId" IS NOT NULL
  AND cm."workspaceId" IS DISTINCT FROM uw."workspaceId"
  AND NOT EXISTS (SELECT 1 FROM belongs b WHERE b."userId" = cm."userId" AND b."workspaceId" = cm."workspaceId")
