-- One batch of the first pass over MetricDaily: the rows still NULL on heap pages
-- [lo, hi) get their connection's workspaceId (Connection goes first). Pages are visited in
-- physical order (a TID range scan), as a single UPDATE would read them, so the batches cost
-- no more I/O than one statement; each batch is its own short transaction.
-- tuples counts every row on those pages (what bounds the next batch's span), scanned the
-- NULL ones among them, updated those it placed (all as of the statement's start).
WITH updated AS (
    UPDATE "MetricDaily" m
    SET "workspaceId" = c."workspaceId"
    FROM "Connection" c
    WHERE m.ctid >= %(lo)s::tid AND m.ctid < %(hi)s::tid
      AND m."workspaceId" IS NULL
      AND c."id" = m."connectionId" AND c."workspaceId" IS NOT NULL
    RETURNING 1
)
SELECT span.tuples, span.scanned, (SELECT count(*) FROM updated) AS updated
FROM (SELECT count(*) AS tuples, count(*) FILTER (WHERE "workspaceId" IS NULL) AS scanned
      FROM "MetricDaily"
      WHERE ctid >= %(lo)s::tid AND ctid < %(hi)s::tid) AS span
