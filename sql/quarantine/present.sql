-- Whether the quarantine table of %(table)s exists (in the quarantine schema %(schema)s).
SELECT to_regclass(quote_ident(%(schema)s) || '.' || quote_ident(%(table)s)) IS NOT NULL AS present
