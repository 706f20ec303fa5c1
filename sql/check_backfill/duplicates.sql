-- Connections sharing a (workspaceId, provider): the unique index forbids them once valid.
SELECT "workspaceId", "provider", count(*) AS connections,
       array_agg("id" ORDER BY "updatedAt" DESC, "id") AS connection_ids
FROM "Connection"
WHERE "workspaceId" IS NOT NULL
GROUP BY "workspaceId", "provider"
HAVING count(*) > 1
ORDER BY "workspaceId", "provider"
