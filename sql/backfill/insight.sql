-- Insight: its connection's workspaceId when connectionId is set, else its user's workspace.
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
target AS (
    SELECT i."id",
           CASE WHEN i."connectionId" IS NOT NULL THEN c."workspaceId"
                ELSE uw."workspaceId" END AS "workspaceId"
    FROM "Insight" i
    LEFT JOIN "Connection" c ON c."id" = i."connectionId"
    LEFT JOIN user_workspace uw ON uw."userId" = i."userId"
    WHERE i."workspaceId" IS NULL
)
UPDATE "Insight" i
SET "workspaceId" = t."workspaceId"
FROM target t
WHERE i."id" = t."id"
  AND i."workspaceId" IS NULL
  AND t."workspaceId" IS NOT NULL
