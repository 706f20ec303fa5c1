-- Read-only stages run in a read-only session: a bug there cannot write.
SET default_transaction_read_only = on
