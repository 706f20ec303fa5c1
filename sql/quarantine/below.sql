-- One hop of quarantine/move_under.sql: the keys of the {table} rows whose {column} is among under.
SELECT {key} FROM {table} WHERE {column} IN ({under})
