-- Rows of {table} sharing a value of one unique key ({columns}): its unique index forbids them
-- once valid. ids: the rows, the winner first ({winner}: the spec's order).
SELECT {columns}, count(*) AS rows,
       array_agg({key} ORDER BY {winner}) AS ids
FROM {table}
WHERE ({columns}) IS NOT NULL
GROUP BY {columns}
HAVING count(*) > 1
ORDER BY {columns}
