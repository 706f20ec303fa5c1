-- The cluster's identity (pg_controldata's "Database system identifier"); needs superuser or pg_monitor.
SELECT system_identifier::text AS system_identifier FROM pg_control_system()
