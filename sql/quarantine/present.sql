SELECT to_regclass('datahub_quarantine.' || quote_ident(%(table)s)) IS NOT NULL AS present
