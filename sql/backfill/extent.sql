-- Where the first pass over one table ends: the heap pages it has now. Rows written after
-- this moment pass through the guard, so pages added later need no first pass.
SELECT pg_relation_size(to_regclass(quote_ident(%(table)s))) / current_setting('block_size')::bigint AS pages
