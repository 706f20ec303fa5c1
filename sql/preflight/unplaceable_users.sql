-- Users the backfill rule cannot place (no default workspace, and OWNER of none or of
-- several) who own rows that still need a workspaceId, with those rows counted.
WITH owned AS (
    SELECT "userId", count(*) AS workspaces
    FROM "WorkspaceMember"
    WHERE "role" = 'OWNER'
    GROUP BY "userId"
),
unplaced AS (
    SELECT u."id" AS "userId", u."email",
           CASE WHEN COALESCE(o.workspaces, 0) = 0 THEN 'orphan' ELSE 'ambiguous' END AS kind,
           COALESCE(o.workspaces, 0) AS owned_workspaces
    FROM "User" u
    LEFT JOIN owned o ON o."userId" = u."id"
    WHERE u."defaultWorkspaceId" IS NULL
      AND COALESCE(o.workspaces, 0) <> 1
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
