-- One batch of the first pass over Connection or ChatMessage ({table}): the rows still NULL
-- on heap pages [lo, hi) get their user's workspace (tenancy_runbook.user_workspace, the
-- rule). Physical order, one short transaction; see pages_metric_daily.sql.
WITH placed AS MATERIALIZED (
    SELECT ctid AS tid, tenancy_runbook.user_workspace("userId") AS ws
    FROM {table}
    WHERE ctid >= %(lo)s::tid AND ctid < %(hi)s::tid AND "workspaceId" IS NULL
), updated AS (
    UPDATE {table} r
    SET "workspaceId" = p.ws
    FROM placed p
    WHERE r.ctid >= %(lo)s::tid AND r.ctid < %(hi)s::tid
      AND r.ctid = p.tid AND r."workspaceId" IS NULL AND p.ws IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM {table} WHERE ctid >= %(lo)s::tid AND ctid < %(hi)s::tid) AS tuples,
       (SELECT count(*) FROM placed) AS scanned,
       (SELECT count(*) FROM updated) AS updated
