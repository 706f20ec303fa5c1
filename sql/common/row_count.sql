-- Rows of one table (used while its tenant column does not exist yet).
SELECT count(*) AS "rows" FROM {table}
