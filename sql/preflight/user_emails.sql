-- The e-mail address of each given user: personal data, read only when show_personal_data is
-- true (a notebook run by hand, never a runbook run: its evidence is archived). The user table
-- and its key are the spec's rule's; its "email" column is the one read.
SELECT {user_key} AS user_id, "email"
FROM {users}
WHERE {user_key} = ANY(%(ids)s::text[])
