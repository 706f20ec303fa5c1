-- A row's tenant when it takes its parent's if it has one, else its user's
-- (`from: parent_else_user`): a row whose <parent_column> is set never falls back to the user,
-- even while that parent has no tenant (it stays NULL, for the rule's checks to count).
CASE WHEN {row}.{parent_column} IS NOT NULL THEN {parent_value} ELSE {user_value} END
