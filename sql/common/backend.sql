-- Which server backend serves this transaction, and the port the server listens on: a pooler in
-- transaction mode moves a client between backends; a proxy listens on another port.
SELECT pg_backend_pid() AS pid, current_setting('port') AS port
