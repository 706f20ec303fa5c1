-- One column of preflight/unplaceable_users.sql: the rows of {table} that would stay without a
-- tenant because of the user up.user_id (owned: preflight/owned_<derivation>.sql).
(SELECT count(*) FROM ({owned}) o WHERE o.row_user = up.user_id) AS {table}
