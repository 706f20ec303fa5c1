-- Data Hub's user -> workspace rule written as a set, for tests/specs/datahub-sql-rule.spec.yaml
-- (user_rule kind sql): the same rule as runbooks/datahub.spec.yaml's default_else_owner, a
-- user's defaultWorkspaceId when set, else the one workspace the user is OWNER of; a NULL
-- tenant_id for a user with neither, or with several owned (tests/test_sql_rule.py).
SELECT u."id" AS user_id,
       COALESCE(u."defaultWorkspaceId", owned."workspaceId") AS tenant_id
FROM "User" u
LEFT JOIN (
    SELECT "userId", min("workspaceId") AS "workspaceId"
    FROM "WorkspaceMember"
    WHERE "role" = 'OWNER'
    GROUP BY "userId"
    HAVING count(*) = 1
) owned ON owned."userId" = u."id"   -- 100% of users, {braces} too: a comment ending the last line
;
-- a comment after the statement
