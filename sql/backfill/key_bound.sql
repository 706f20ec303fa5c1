-- Where the next range of keys of <table> ends, for the second pass on several workers: the
-- primary key of the size-th row still without a tenant after the given key (none: fewer are
-- left, and the range runs to the end of the table). Each worker's batches then stay within its
-- range (next_keys.sql's upto), so no two workers touch the same rows.
SELECT {key} AS upto
FROM {table}
WHERE {tenant} IS NULL AND {key} > %(after)s
ORDER BY {key}
OFFSET %(size)s - 1
LIMIT 1
