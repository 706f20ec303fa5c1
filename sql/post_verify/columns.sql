-- The seed review's first verification query: is_nullable must be 'NO' on every table's tenant
-- column (%(column)s).
SELECT table_name AS "table", column_name AS "column", is_nullable
FROM information_schema.columns
WHERE table_schema = current_schema()
  AND table_name = ANY(%(tables)s::text[])
  AND column_name = %(column)s
ORDER BY table_name
