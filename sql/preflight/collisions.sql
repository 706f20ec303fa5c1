-- The (workspaceId, provider) pairs the backfill would give to more than one Connection:
-- the unique index Connection_workspaceId_provider_key would reject all but one of them.
-- A row that already has a workspaceId keeps it (to_jsonb works before the column exists).
WITH user_workspace AS (
    {include common/user_workspace}
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
