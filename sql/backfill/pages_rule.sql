-- One batch of the first pass over a table whose rows take their user's tenant, or their
-- parent's else their user's: the rows still without one on heap pages [lo, hi) get <value>
-- (value_user.sql or value_parent_else_user.sql). Physical order, one short transaction; see
-- pages_parent.sql.
WITH placed AS MATERIALIZED (
    SELECT r.ctid AS tid, {value} AS tenant
    FROM {table} r
    WHERE r.ctid >= %(lo)s::tid AND r.ctid < %(hi)s::tid AND r.{tenant} IS NULL
), updated AS (
    UPDATE {table} t
    SET {tenant} = p.tenant
    FROM placed p
    WHERE t.ctid >= %(lo)s::tid AND t.ctid < %(hi)s::tid
      AND t.ctid = p.tid AND t.{tenant} IS NULL AND p.tenant IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM {table} WHERE ctid >= %(lo)s::tid AND ctid < %(hi)s::tid) AS tuples,
       (SELECT count(*) FROM placed) AS scanned,
       (SELECT count(*) FROM updated) AS updated
