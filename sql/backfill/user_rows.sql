-- Connection and ChatMessage ({table}): the row's user's workspace. Only rows still NULL, so
-- a re-run continues where the last one stopped; users the rule cannot place keep NULL
-- (preflight lists them).
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
)
UPDATE {table} r
SET "workspaceId" = uw."workspaceId"
FROM user_workspace uw
WHERE r."workspaceId" IS NULL
  AND uw."userId" = r."userId"
  AND uw."workspaceId" IS NOT NULL
