-- Other sessions holding (or queued for) a lock on the given tables: who would block DDL there.
SELECT DISTINCT a.pid, a.usename AS "user", a.application_name, a.state,
       date_trunc('second', now() - a.xact_start) AS transaction_age,
       l.mode, l.relation::regclass::text AS "table",
       left(regexp_replace(a.query, '\s+', ' ', 'g'), 200) AS query
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.relation = ANY(SELECT to_regclass(quote_ident(t)) FROM unnest(%(tables)s::text[]) AS t)
  AND a.pid <> pg_backend_pid()
ORDER BY transaction_age DESC NULLS LAST
