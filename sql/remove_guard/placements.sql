-- Per table (%(tables)s, in that order): whether the guard is on it, the rows it placed and the
-- rows it could not place since it began counting (summed over the backends it ran in), when it
-- last did either and how many seconds ago, and since when it counts (the marker row '*', 0).
-- Ages by the database's clock, the one the trigger wrote them with.
WITH counts AS (
    SELECT table_name, sum(placed) AS placed, sum(unplaced) AS unplaced, max(last_at) AS last_at
    FROM tenancy_runbook.guard_placements
    WHERE backend_pid <> 0
    GROUP BY table_name
), since AS (
    SELECT min(last_at) AS counting_since
    FROM tenancy_runbook.guard_placements
    WHERE table_name = '*' AND backend_pid = 0
)
SELECT t AS "table",
       EXISTS (SELECT 1 FROM pg_trigger
               WHERE tgrelid = to_regclass(quote_ident(t))
                 AND tgname = 'tenancy_runbook_place_workspace') AS guarded,
       COALESCE(c.placed, 0)::bigint AS placed,
       COALESCE(c.unplaced, 0)::bigint AS unplaced,
       c.last_at,
       extract(epoch FROM clock_timestamp() - c.last_at)::float8 AS last_s_ago,
       s.counting_since,
       extract(epoch FROM clock_timestamp() - s.counting_since)::float8 AS counting_s
FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS x(t, ord)
LEFT JOIN counts c ON c.table_name = x.t
CROSS JOIN since s
ORDER BY x.ord
