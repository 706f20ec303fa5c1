-- Which server and database a run touched, for the manifest (schema: where the app's tables are).
SELECT current_setting('server_version') AS server_version,
       current_database() AS database,
       current_schema() AS schema,
       current_user AS "user"
