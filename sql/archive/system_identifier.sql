-- The cluster's identity (pg_controldata's "Database system identifier"). PUBLIC may run
-- pg_control_system() unless the server (a managed service) revoked it: then it is recorded as not permitted.
SELECT system_identifier::text AS system_identifier FROM pg_control_system()
