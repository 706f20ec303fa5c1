-- The runbook's temporary CHECK on one table: absent, NOT VALID or validated.
SELECT CASE WHEN c.oid IS NULL THEN 'absent'
            WHEN c.convalidated THEN 'validated'
            ELSE 'not valid' END AS state
FROM (SELECT 1) AS one
LEFT JOIN pg_constraint c
       ON c.conname = %(constraint)s AND c.conrelid = to_regclass(quote_ident(%(table)s))
