-- Scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on meanwhile.
ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}
