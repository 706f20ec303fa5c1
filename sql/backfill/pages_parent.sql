-- One batch of the first pass over a table whose rows take their parent's tenant (the parent
-- table goes first): the rows still without one on heap pages [lo, hi) get the tenant of the
-- <parent> row their <parent_column> references. Pages are visited in physical order (a TID
-- range scan), as a single UPDATE would read them, so the batches cost no more I/O than one
-- statement; each batch is its own short transaction.
-- tuples counts every row on those pages (what bounds the next batch's span), scanned the
-- rows without a tenant among them, updated those it placed (all as of the statement's start).
WITH updated AS (
    UPDATE {table} t
    SET {tenant} = p.{tenant}
    FROM {parent} p
    WHERE t.ctid >= %(lo)s::tid AND t.ctid < %(hi)s::tid
      AND t.{tenant} IS NULL
      AND p.{parent_key} = t.{parent_column} AND p.{tenant} IS NOT NULL
    RETURNING 1
)
SELECT span.tuples, span.scanned, (SELECT count(*) FROM updated) AS updated
FROM (SELECT count(*) AS tuples, count(*) FILTER (WHERE {tenant} IS NULL) AS scanned
      FROM {table}
      WHERE ctid >= %(lo)s::tid AND ctid < %(hi)s::tid) AS span
