-- Rows per heap page of one table where its pages are full, as the first pass's bound on a
-- batch's span starts from: the 95th percentile over about 1,000 pages read at random
-- (TABLESAMPLE SYSTEM reads whole pages; a page with no live row is not counted). Done pages
-- of an interrupted run hold only dead rows, so the batches over them measure none; the table's
-- average would then halve the figure.
SELECT percentile_disc(0.95) WITHIN GROUP (ORDER BY n) AS tuples_per_page
FROM (SELECT count(*) AS n
      FROM {table} TABLESAMPLE SYSTEM (%(percent)s)
      GROUP BY (ctid::text::point)[0]) AS pages
