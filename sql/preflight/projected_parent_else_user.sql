-- As projected_user.sql, for a table whose rows take their parent's tenant when {column} is set
-- (parent: the parent table's projection), else their user's by the rule.
SELECT t.*, t.{key} AS row_key,
       CASE WHEN t.{column} IS NULL THEN t.{user} ELSE p.row_user END AS row_user,
       COALESCE(to_jsonb(t) ->> %(tenant)s::text,
                CASE WHEN t.{column} IS NULL THEN uw.tenant_id::text ELSE p.row_tenant END) AS row_tenant
FROM {table} t
LEFT JOIN ({parent}) p ON p.row_key = t.{column}
LEFT JOIN user_workspace uw ON uw.user_id = t.{user}
