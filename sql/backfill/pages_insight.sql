-- One batch of the first pass over Insight: the rows still NULL on heap pages [lo, hi) get
-- their connection's workspaceId when connectionId is set, else their user's workspace.
-- Physical order, one short transaction; see pages_metric_daily.sql.
WITH placed AS MATERIALIZED (
    SELECT i.ctid AS tid,
           CASE WHEN i."connectionId" IS NOT NULL
                THEN (SELECT c."workspaceId" FROM "Connection" c WHERE c."id" = i."connectionId")
                ELSE tenancy_runbook.user_workspace(i."userId") END AS ws
    FROM "Insight" i
    WHERE i.ctid >= %(lo)s::tid AND i.ctid < %(hi)s::tid AND i."workspaceId" IS NULL
), updated AS (
    UPDATE "Insight" i
    SET "workspaceId" = p.ws
    FROM placed p
    WHERE i.ctid >= %(lo)s::tid AND i.ctid < %(hi)s::tid
      AND i.ctid = p.tid AND i."workspaceId" IS NULL AND p.ws IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM "Insight" WHERE ctid >= %(lo)s::tid AND ctid < %(hi)s::tid) AS tuples,
       (SELECT count(*) FROM placed) AS scanned,
       (SELECT count(*) FROM updated) AS updated
