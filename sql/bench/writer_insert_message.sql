INSERT INTO "ChatMessage" ("id", "userId", "role", "content", "workspaceId")
VALUES (%(id)s, %(user)s, 'user', 'bench', %(workspace)s)
