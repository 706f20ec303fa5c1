-- Rows and NULL tenant columns ({column}, the tenancy spec's) of one table (the column must exist).
SELECT count(*) AS "rows",
       count(*) FILTER (WHERE {column} IS NULL) AS nulls
FROM {table}
