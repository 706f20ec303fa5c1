-- The (workspaceId, provider) pairs the backfill would give to more than one Connection:
-- the unique index Connection_workspaceId_provider_key would reject all but one of them.
-- A row that already has a workspaceId keeps it (to_jsonb works before the column exists).
WITH user_workspace AS (
    -- The backfill rule for a user (datahub-app.md): User.defaultWorkspaceId when set,
    -- otherwise the one workspace the user OWNS. No default and zero or several owned
    -- workspaces gives NULL: the rule does not guess.
    SELECT u."id" AS "userId",
           COALESCE(u."defaultWorkspaceId", owned."workspaceId") AS "workspaceId"
    FROM "User" u
    LEFT JOIN (
        SELECT "userId", min("workspaceId") AS "workspaceId"
        FROM "WorkspaceMember"
        WHERE "role" = 'OWNER'
        GROUP BY "userId"
        HAVING count(*) = 1
    ) owned ON owned."userId" = u."id"
),
projected AS (
    SELECT c."id", c."userId", c."provider", c."updatedAt",
           COALESCE(to_jsonb(c) ->> 'workspaceId', uw."workspaceId") AS "workspaceId"
    FROM "Connection" c
    LEFT JOIN user_workspace uw ON uw."userId" = c."userId"
)
SELECT "workspaceId",
       "provider",
       count(*) AS connections,
       array_agg("id" ORDER BY "updatedAt" DESC, "id") AS connection_ids,
       array_agg(DISTINCT "userId") AS user_ids
FROM projected
WHERE "workspaceId" IS NOT NULL
GROUP BY "workspaceId", "provider"
HAVING count(*) > 1
ORDER BY "workspaceId", "provider"
