-- Where the next range of keys of {table} ends, for the second pass on several workers: the
-- primary key of the size-th row still NULL after the given key (none: fewer are left, and the
-- range runs to the end of the table). Each worker's batches then stay within its range
-- (batch_*.sql's upto), so no two workers touch the same rows.
SELECT "id" AS upto
FROM {table}
WHERE "workspaceId" IS NULL AND "id" > %(after)s
ORDER BY "id"
OFFSET %(size)s - 1
LIMIT 1
