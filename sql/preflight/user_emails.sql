-- The e-mail address of each given user: personal data, read only when show_personal_data is
-- true (a notebook run by hand, never a runbook run: its evidence is archived).
SELECT "id" AS "userId", "email"
FROM "User"
WHERE "id" = ANY(%(ids)s::text[])
