-- The state of each table's tenant column (%(column)s): absent, nullable or NOT NULL.
SELECT t AS "table",
       to_regclass(quote_ident(t)) IS NOT NULL AS table_present,
       CASE WHEN a.attname IS NULL THEN 'absent'
            WHEN a.attnotnull THEN 'NOT NULL'
            ELSE 'nullable' END AS state
FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS x(t, ord)
LEFT JOIN pg_attribute a
       ON a.attrelid = to_regclass(quote_ident(t))
      AND a.attname = %(column)s
      AND NOT a.attisdropped
ORDER BY ord
