-- The backfill rule for every user (datahub-app.md): User.defaultWorkspaceId when set,
-- otherwise the one workspace the user OWNS. No default and zero or several owned workspaces
-- gives NULL: the rule does not guess.
-- The one place the rule is written: preflight/collisions.sql, check_backfill/rule_mismatches.sql
-- and the guard's function tenancy_runbook.user_workspace() (backfill/guard.sql) include it.
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
