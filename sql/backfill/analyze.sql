-- Fresh planner statistics for one table (SHARE UPDATE EXCLUSIVE: writers are not blocked).
ANALYZE {table}
