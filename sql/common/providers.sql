-- Every provider in use, so a chart shows the ones without collisions too.
SELECT DISTINCT "provider" FROM "Connection" ORDER BY "provider"
