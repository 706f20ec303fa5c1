-- A table's columns in order (the quarantine copies exactly these). schema NULL: the current one.
SELECT attname AS "column"
FROM pg_attribute
WHERE attrelid = to_regclass(quote_ident(COALESCE(%(schema)s, current_schema())) || '.' || quote_ident(%(table)s))
  AND attnum > 0 AND NOT attisdropped
ORDER BY attnum
