-- The backfill rule for every user (datahub-app.md): User.defaultWorkspaceId when set,
-- otherwise the one workspace the user OWNS. No default and zero or several owned workspaces
-- gives NULL: the rule does not guess.
-- The checks include it (preflight/collisions.sql, preflight/unplaceable_users.sql,
-- check_backfill/rule_mismatches.sql). The guard's per-row function in backfill/guard.sql is
-- the only other form of the rule; a test checks the two agree for every user.
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
