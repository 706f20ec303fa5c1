-- An INVALID index (a concurrent build that failed) is dropped before it is built again.
DROP INDEX CONCURRENTLY IF EXISTS {index}
