-- Rows and NULL workspaceIds of one table (the column must exist).
SELECT count(*) AS "rows",
       count(*) FILTER (WHERE "workspaceId" IS NULL) AS nulls
FROM {table}
