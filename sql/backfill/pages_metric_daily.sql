-- One batch of the first pass over MetricDaily: the rows still NULL on heap pages
-- [lo, hi) get their connection's workspaceId (Connection goes first). Pages are visited in
-- physical order (a TID range scan), as a single UPDATE would read them, so the batches cost
-- no more I/O than one statement; each batch is its own short transaction.
-- scanned counts the NULL rows the batch found, updated those it placed.
WITH updated AS (
    UPDATE "MetricDaily" m
    SET "workspaceId" = c."workspaceId"
    FROM "Connection" c
    WHERE m.ctid >= %(lo)s::tid AND m.ctid < %(hi)s::tid
      AND m."workspaceId" IS NULL
      AND c."id" = m."connectionId" AND c."workspaceId" IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM "MetricDaily"
         WHERE ctid >= %(lo)s::tid AND ctid < %(hi)s::tid AND "workspaceId" IS NULL) AS scanned,
       (SELECT count(*) FROM updated) AS updated
