-- The user -> tenant rule for one user (a `kind: sql` rule): the tenant_id the spec's rule file
-- (<rule>, its SELECT of user_id, tenant_id, as placement.rule_set() gives it) gives this user;
-- NULL when it gives none. The planner pushes the user down into the file's SELECT where it can.
-- common/user_workspace_sql.sql is its set form, which the checks read.
CREATE OR REPLACE FUNCTION tenancy_runbook.user_workspace(user_id TEXT) RETURNS TEXT
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $fn$
    SELECT rule.tenant_id FROM (
{rule}
    ) AS rule WHERE rule.user_id = user_workspace.user_id
$fn$
