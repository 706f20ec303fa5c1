-- One keyset batch of the second pass (after pages_parent.sql) over a table whose rows take their
-- parent's tenant: the next rows by primary key still without one get the tenant of the <parent>
-- row their <parent_column> references, by a join (a batch reaches most parents: hashing them
-- is cheaper than a lookup per row). Keys looked up by primary key, as batch_rule.sql's.
WITH batch AS MATERIALIZED (
    SELECT r.{key} AS key
    FROM {table} r
{include backfill/next_keys}
), updated AS (
    UPDATE {table} t
    SET {tenant} = p.{tenant}
    FROM {parent} p
    WHERE t.{key} = ANY (ARRAY(SELECT key FROM batch)) AND t.{tenant} IS NULL
      AND p.{parent_key} = t.{parent_column} AND p.{tenant} IS NOT NULL
    RETURNING 1
)
SELECT (SELECT max(key) FROM batch) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM updated) AS updated
