-- Each object of migration 1 (the spec's: a tenant column per table, its indexes, a foreign key
-- per table): does it exist, and is it complete (an index valid, a foreign key validated)? The
-- schema itself is the record. %(column)s: the tenant column's name.
SELECT o.kind, o.tbl AS "table", o.name,
       CASE o.kind
         WHEN 'column' THEN EXISTS (
             SELECT 1 FROM pg_attribute a
             WHERE a.attrelid = to_regclass(quote_ident(o.tbl))
               AND a.attname = %(column)s AND NOT a.attisdropped)
         WHEN 'index' THEN to_regclass(quote_ident(o.name)) IS NOT NULL
         WHEN 'foreign key' THEN EXISTS (
             SELECT 1 FROM pg_constraint c
             WHERE c.conname = o.name AND c.conrelid = to_regclass(quote_ident(o.tbl)))
       END AS present,
       CASE o.kind
         WHEN 'column' THEN EXISTS (
             SELECT 1 FROM pg_attribute a
             WHERE a.attrelid = to_regclass(quote_ident(o.tbl))
               AND a.attname = %(column)s AND NOT a.attisdropped)
         WHEN 'index' THEN COALESCE((
             SELECT i.indisvalid AND i.indisready FROM pg_index i
             WHERE i.indexrelid = to_regclass(quote_ident(o.name))), false)
         WHEN 'foreign key' THEN COALESCE((
             SELECT c.convalidated FROM pg_constraint c
             WHERE c.conname = o.name AND c.conrelid = to_regclass(quote_ident(o.tbl))), false)
       END AS complete
FROM unnest(%(kinds)s::text[], %(tables)s::text[], %(names)s::text[]) WITH ORDINALITY AS o(kind, tbl, name, n)
ORDER BY o.n
