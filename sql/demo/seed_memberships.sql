-- The seeds' memberships every user has, from seed_user (sql/demo/seed_users.sql): OWNER of
-- its own workspace (orphans have none) and of its second one (ambiguous users), MEMBER of its
-- default workspace when that is another user's (a shared pair's second user). A seed inserts
-- these, then its orphans' memberships (included on lines of their own).
SELECT 'ws_' || n, id, 'OWNER'::"WorkspaceRole" FROM seed_user WHERE kind <> 'orphan'
UNION ALL
SELECT 'ws_' || n || '_b', id, 'OWNER'::"WorkspaceRole" FROM seed_user WHERE kind = 'ambiguous'
UNION ALL
SELECT default_ws, id, 'MEMBER'::"WorkspaceRole" FROM seed_user WHERE default_ws <> 'ws_' || n
