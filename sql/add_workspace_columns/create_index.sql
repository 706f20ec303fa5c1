-- One of migration 1's indexes (the spec's indexes), built CONCURRENTLY: reads and writes go on
-- while it builds; outside a transaction block. {unique} is UNIQUE or nothing.
CREATE {unique} INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table}({columns})
