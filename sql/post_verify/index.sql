-- One index by name: does it exist, is it unique, valid and ready, and its definition.
SELECT c.relname AS index_name, i.indisunique, i.indisvalid, i.indisready,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relname = %(index)s
  AND c.relnamespace = current_schema()::regnamespace
