-- Rows of one table the transition guard could not place so far (written without a
-- tenant by a user the rule has no answer for): committed counts, all backends.
SELECT COALESCE(sum(unplaced), 0)::bigint AS unplaced
FROM tenancy_runbook.guard_placements
WHERE table_name = %(table)s
