-- The unique indexes of a table other than its primary key, on plain columns only (no
-- expression, no predicate), each with its columns in order: a quarantined row must not
-- take a value of one that a live row holds (quarantine/restore_conflicts_unique.sql).
SELECT i.indexrelid::regclass::text AS "index",
       array_agg(a.attname ORDER BY k.n) AS columns
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass(quote_ident(%(table)s))
  AND i.indisunique AND NOT i.indisprimary AND i.indisready
  AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid
ORDER BY 1
