-- RESTRICT: dropped only when nothing is left in it; and only when the runbook's role owns it
-- (a schema an administrator created for the runbook is left to them).
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_namespace WHERE nspname = 'tenancy_runbook'
               AND pg_has_role(nspowner, 'USAGE')) THEN
        DROP SCHEMA tenancy_runbook RESTRICT;
    END IF;
END $$
