-- One keyset batch of the second pass (after pages_rule.sql) over a table whose rows take their
-- user's tenant, or their parent's else their user's: the next rows by primary key still without
-- one get <value> (value_user.sql or value_parent_else_user.sql). The keys are looked up by
-- primary key (= ANY of an array), so the UPDATE never scans the whole table. Returns where the
-- batch ended, so the next one starts after it.
WITH batch AS MATERIALIZED (
    SELECT r.{key} AS key, {value} AS tenant
    FROM {table} r
{include backfill/next_keys}
), updated AS (
    UPDATE {table} t
    SET {tenant} = b.tenant
    FROM batch b
    WHERE t.{key} = ANY (ARRAY(SELECT key FROM batch)) AND t.{key} = b.key
      AND t.{tenant} IS NULL AND b.tenant IS NOT NULL
    RETURNING 1
)
SELECT (SELECT max(key) FROM batch) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM updated) AS updated
