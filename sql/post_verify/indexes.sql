-- Each index by name (%(names)s, in that order; %(unique)s: whether it must be unique): does it
-- exist (in the current schema), is it unique, valid and ready, and its definition.
SELECT x.name AS index_name, COALESCE(x.tbl, t.relname) AS "table", x.expected_unique,
       i.indexrelid IS NOT NULL AS present,
       COALESCE(i.indisunique, false) AS indisunique, COALESCE(i.indisvalid, false) AS indisvalid,
       COALESCE(i.indisready, false) AS indisready,
       pg_get_indexdef(i.indexrelid) AS definition
FROM unnest(%(names)s::text[], %(tables)s::text[], %(unique)s::boolean[])
     WITH ORDINALITY AS x(name, tbl, expected_unique, ord)
LEFT JOIN pg_class c ON c.relname = x.name AND c.relnamespace = current_schema()::regnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
ORDER BY x.ord
