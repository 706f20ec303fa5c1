-- Users the backfill rule (common/user_workspace.sql) cannot place, who own rows that still
-- need a workspaceId, with those rows counted; kind says why: no default workspace and OWNER
-- of none (orphan) or of several (ambiguous). Users are named by id only: no e-mail or other
-- personal field (preflight/user_emails.sql adds the e-mail, for an interactive session only).
WITH user_workspace AS (
    {include common/user_workspace}
),
owned AS (
    SELECT "userId", count(*) AS workspaces
    FROM "WorkspaceMember"
    WHERE "role" = 'OWNER'
    GROUP BY "userId"
),
unplaced AS (
    SELECT u."id" AS "userId",
           CASE WHEN COALESCE(o.workspaces, 0) = 0 THEN 'orphan' ELSE 'ambiguous' END AS kind,
           COALESCE(o.workspaces, 0) AS owned_workspaces
    FROM "User" u
    JOIN user_workspace uw ON uw."userId" = u."id"
    LEFT JOIN owned o ON o."userId" = u."id"
    WHERE uw."workspaceId" IS NULL
),
counted AS (
    SELECT up.*,
           (SELECT count(*) FROM "Connection" c
             WHERE c."userId" = up."userId"
               AND to_jsonb(c) ->> 'workspaceId' IS NULL) AS connections,
           (SELECT count(*) FROM "MetricDaily" m
              JOIN "Connection" c ON c."id" = m."connectionId"
             WHERE c."userId" = up."userId"
               AND to_jsonb(c) ->> 'workspaceId' IS NULL
               AND to_jsonb(m) ->> 'workspaceId' IS NULL) AS metric_rows,
           (SELECT count(*) FROM "Insight" i
              LEFT JOIN "Connection" c ON c."id" = i."connectionId"
             WHERE to_jsonb(i) ->> 'workspaceId' IS NULL
               AND ((i."connectionId" IS NULL AND i."userId" = up."userId")
                 OR (c."userId" = up."userId" AND to_jsonb(c) ->> 'workspaceId' IS NULL))) AS insights,
           (SELECT count(*) FROM "ChatMessage" cm
             WHERE cm."userId" = up."userId"
               AND to_jsonb(cm) ->> 'workspaceId' IS NULL) AS chat_messages
    FROM unplaced up
)
SELECT *
FROM counted
WHERE connections + metric_rows + insights + chat_messages > 0
ORDER BY kind, "userId"
