-- Every value in use of a unique key's columns other than the tenant column ({columns}; Data
-- Hub: each provider), so a chart shows the ones without collisions too.
SELECT DISTINCT {columns} FROM {table}
