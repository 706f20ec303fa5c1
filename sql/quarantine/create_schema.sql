-- The quarantine schema, made only when absent (quarantine/schema_present.sql): IF NOT EXISTS
-- would need CREATE on the database even when an administrator has created it beforehand.
CREATE SCHEMA {schema}
