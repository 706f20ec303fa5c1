-- Rows of one table (used while its workspaceId column does not exist yet).
SELECT count(*) AS "rows" FROM {table}
