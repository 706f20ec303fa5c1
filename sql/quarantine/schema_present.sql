-- Whether the quarantine schema exists.
SELECT to_regnamespace(quote_ident(%(schema)s)) IS NOT NULL AS present
