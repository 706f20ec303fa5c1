SELECT q."id", 'live connection ' || l."id" || ' has the same ' ||
       CASE WHEN l."userId" = q."userId" THEN '(userId, provider)' ELSE '(workspaceId, provider)' END AS problem
FROM datahub_quarantine."Connection" q
JOIN "Connection" l
  ON l."id" <> q."id" AND l."provider" = q."provider"
 AND (l."userId" = q."userId" OR l."workspaceId" = q."workspaceId")
WHERE %(run_id)s = '' OR q."run_id" = %(run_id)s
