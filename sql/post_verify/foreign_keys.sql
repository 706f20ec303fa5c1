-- The four workspaceId foreign keys: present and validated.
SELECT t AS "table", t || '_workspaceId_fkey' AS constraint_name,
       c.oid IS NOT NULL AS present, COALESCE(c.convalidated, false) AS validated,
       pg_get_constraintdef(c.oid) AS definition
FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS x(t, ord)
LEFT JOIN pg_constraint c
       ON c.conname = t || '_workspaceId_fkey'
      AND c.conrelid = to_regclass(quote_ident(t))
ORDER BY ord
