-- Where the transition guard is installed.
SELECT t AS "table",
       EXISTS (SELECT 1 FROM pg_trigger
               WHERE tgrelid = to_regclass(quote_ident(t))
                 AND tgname = 'tenancy_runbook_place_workspace') AS guarded
FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS x(t, ord)
ORDER BY ord
