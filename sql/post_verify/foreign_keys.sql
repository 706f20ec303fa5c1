-- Each table's foreign key on its tenant column (%(names)s, the spec's names): present and validated.
SELECT t AS "table", n AS constraint_name,
       c.oid IS NOT NULL AS present, COALESCE(c.convalidated, false) AS validated,
       pg_get_constraintdef(c.oid) AS definition
FROM unnest(%(tables)s::text[], %(names)s::text[]) WITH ORDINALITY AS x(t, n, ord)
LEFT JOIN pg_constraint c
       ON c.conname = n
      AND c.conrelid = to_regclass(quote_ident(t))
ORDER BY ord
