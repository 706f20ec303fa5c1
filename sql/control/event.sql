-- Something the run did that its evidence shows: a command applied, a wait for database health.
INSERT INTO tenancy_runbook.events (run_id, kind, "table", detail, seconds)
VALUES (%(run_id)s, %(kind)s, %(table)s, %(detail)s, %(seconds)s)
