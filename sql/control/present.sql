-- Whether the control tables exist (status and the runner read them only then; a database no
-- backfill has run on has none).
SELECT to_regclass('tenancy_runbook.progress') IS NOT NULL
       AND to_regclass('tenancy_runbook.commands') IS NOT NULL
       AND to_regclass('tenancy_runbook.events') IS NOT NULL AS present
