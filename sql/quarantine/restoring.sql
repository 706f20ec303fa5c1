-- For this transaction: the transition guard leaves restored rows as they were.
SELECT set_config('tenancy_runbook.restoring', 'on', true)
