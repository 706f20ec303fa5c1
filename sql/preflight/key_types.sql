-- The type of every column whose values the run compares, binds and stores as text: each
-- table's key, its user and parent columns, the tenant table's key (what the tenant column
-- holds), the tenant column where migration 1 added it, and the rule's user and tenant
-- columns. supported: text or varchar, what the runbook handles today (docs/spec.md, "Limits
-- today"): the guard's function, the second pass and the quarantine compare them with text
-- values, which fails for a uuid or integer column partway through a run, so 00 refuses it first.
-- type is 'absent' where the table or column is (the tables check reports a missing table; the
-- tenant column is absent before migration 1).
SELECT x.t AS "table", x.c AS "column", x.what,
       COALESCE(format_type(a.atttypid, a.atttypmod), 'absent') AS type,
       a.atttypid IS NULL OR a.atttypid IN ('text'::regtype, 'varchar'::regtype) AS supported
FROM unnest(%(tables)s::text[], %(columns)s::text[], %(whats)s::text[]) WITH ORDINALITY AS x(t, c, what, ord)
LEFT JOIN pg_attribute a
       ON a.attrelid = to_regclass(quote_ident(x.t))
      AND a.attname = x.c
      AND NOT a.attisdropped
ORDER BY x.ord
