-- One table's part of the users preflight/unplaced_sql.sql looks at (joined by UNION ALL): the
-- user of each of its rows still without a tenant (owned: preflight/owned_<derivation>.sql).
SELECT o.row_user FROM ({owned}) o
