-- A quarantined row may have no tenant (that is why the rule's leftovers are moved): the
-- quarantine table takes a NULL in {column} even when it was created (LIKE copies NOT NULL)
-- after 40_enforce_not_null. Otherwise such a move fails, and PostgreSQL's error prints the
-- whole row (an access token, a chat message) into the notebook, the terminal and the manifest.
ALTER TABLE {quarantine} ALTER COLUMN {column} DROP NOT NULL
