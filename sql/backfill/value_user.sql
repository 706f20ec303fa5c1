-- A row's tenant when it takes its user's (a table `from: user`): the rule's answer for the user
-- in <user_column> (tenancy_runbook.user_workspace, guard.sql; NULL when the rule has none).
-- <row>: the row, as the statement that includes this names it (r in a batch, NEW in the guard).
tenancy_runbook.user_workspace({row}.{user_column})
