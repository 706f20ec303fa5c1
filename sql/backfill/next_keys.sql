-- (Included by batch_rule.sql and batch_parent.sql.) The next rows of the second pass, by primary
-- key: still without a tenant, after the key the last batch ended at, within the worker's range
-- of keys when there are several workers (key_bound.sql's upto), at most size of them.
    WHERE r.{tenant} IS NULL AND r.{key} > %(after)s
      AND (r.{key} <= %(upto)s OR %(upto)s::text IS NULL)
    ORDER BY r.{key}
    LIMIT %(size)s
