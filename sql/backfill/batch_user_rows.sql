-- One keyset batch of Connection or ChatMessage ({table}), the second pass (after
-- pages_user_rows.sql): the next rows by primary key that still have no workspaceId get their
-- user's (tenancy_runbook.user_workspace, the rule). Returns where the batch ended, so the
-- next one starts after it.
WITH batch AS MATERIALIZED (
    SELECT "id", tenancy_runbook.user_workspace("userId") AS ws
    FROM {table}
    WHERE "workspaceId" IS NULL AND "id" > %(after)s
      AND ("id" <= %(upto)s OR %(upto)s::text IS NULL)   -- a worker's range of keys (key_bound.sql)
    ORDER BY "id"
    LIMIT %(size)s
), updated AS (
    UPDATE {table} r
    SET "workspaceId" = b.ws
    FROM batch b
    WHERE r."id" = ANY (ARRAY(SELECT "id" FROM batch)) AND r."id" = b."id"
      AND r."workspaceId" IS NULL AND b.ws IS NOT NULL
    RETURNING 1
)
SELECT (SELECT max("id") FROM batch) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM updated) AS updated
