-- Users the backfill rule (common/user_workspace.sql) cannot place, who own rows that still
-- need a tenant, with those rows counted: one column per migrated table (counts, each
-- preflight/unplaceable_count.sql; {total}: their sum), through any chain depth (a row whose
-- parent's parent's user is one of them). kind says why: no default tenant and the owner role
-- in none (orphan) or in several (ambiguous). Users are named by their key only: no e-mail or
-- other personal field (preflight/user_emails.sql adds the e-mail, for an interactive session).
WITH user_workspace AS (
    {include common/user_workspace}
),
owned AS (
    SELECT {member_user} AS user_id, count(*) AS tenants
    FROM {members}
    WHERE {member_role}::text = %(owner)s
    GROUP BY {member_user}
),
unplaced AS (
    SELECT uw.user_id,
           CASE WHEN COALESCE(o.tenants, 0) = 0 THEN 'orphan' ELSE 'ambiguous' END AS kind,
           COALESCE(o.tenants, 0) AS owned_tenants
    FROM user_workspace uw
    LEFT JOIN owned o ON o.user_id = uw.user_id
    WHERE uw.tenant_id IS NULL
),
counted AS (
    SELECT up.*, {counts}
    FROM unplaced up
)
SELECT *
FROM counted
WHERE {total} > 0
ORDER BY kind, user_id
