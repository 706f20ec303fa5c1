-- The user -> tenant rule for one user (a `default_else_owner` rule), written per row for the
-- guard's and the batches' sake: the same rule as sql/common/user_workspace.sql (the set-based
-- form the checks include), kept apart because this form looks the membership table up only for
-- users without a default tenant (about 3.5x faster per row). tests/test_backfill.py checks both
-- give every user the same answer. NULL when there is no single answer (orphan, ambiguous).
-- <owner>: the spec's owner role value, a literal (a function body takes no bound parameter).
CREATE OR REPLACE FUNCTION tenancy_runbook.user_workspace(user_id TEXT) RETURNS TEXT
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $fn$
    SELECT COALESCE(
        (SELECT {default_tenant} FROM {users} WHERE {user_key} = user_id),
        (SELECT min({member_tenant}) FROM {members}
          WHERE {member_user} = user_id AND {member_role} = {owner}
         HAVING count(*) = 1))
$fn$
