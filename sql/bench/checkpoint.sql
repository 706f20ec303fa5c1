-- Before each idle or replica measurement: a checkpoint, so each backfill starts from the same
-- state (every page's first change after it writes a full-page image into the WAL, for both
-- methods alike) and no checkpoint left over from the copy runs during it. Needs a superuser
-- (or pg_checkpoint, PostgreSQL 15+): the benchmark's admin URL is one.
CHECKPOINT
