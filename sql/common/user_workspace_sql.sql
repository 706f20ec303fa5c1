-- The user -> tenant rule as a set for a rule of kind sql (docs/spec.md, user_rule kind sql): the
-- rows of the spec's own rule file, a SELECT of user_id, tenant_id (at most one row per user),
-- taken as a subquery. rule: that file's text as placement.rule_set() gives it (comment lines
-- and a trailing ';' left out; trusted text from the spec's author, like a migration). A user
-- it gives no row, or a NULL tenant_id, has no tenant. It stands where common/user_workspace.sql
-- stands for kind default_else_owner (the checks' CTE user_workspace); backfill/guard_rule_set.sql
-- is its per-row form.
SELECT rule.user_id, rule.tenant_id
FROM (
{rule}
) AS rule
