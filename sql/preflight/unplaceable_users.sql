-- Users the backfill rule cannot place, who own rows that still need a tenant, with those rows
-- counted: one column per migrated table (counts, each preflight/unplaceable_count.sql; {total}:
-- their sum), through any chain depth (a row whose parent's parent's user is one of them).
-- user_workspace: the rule as a set (common/user_workspace.sql, or common/user_workspace_sql.sql
-- for a rule of kind sql); unplaced: those it cannot place, with kind saying why and
-- owned_tenants (preflight/unplaced_<rule kind>.sql). Users are named by their key only: no
-- e-mail or other personal field (preflight/user_emails.sql adds the e-mail, for an interactive
-- session).
WITH user_workspace AS (
    {user_workspace}
),
unplaced AS (
    {unplaced}
),
counted AS (
    SELECT up.*, {counts}
    FROM unplaced up
)
SELECT *
FROM counted
WHERE {total} > 0
ORDER BY kind, user_id
