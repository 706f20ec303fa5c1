-- (One per migrated table, in guard_place.sql.) A row of <name> written without a tenant gets
-- <value> (value_user.sql, value_parent.sql or value_parent_else_user.sql, on NEW); a row
-- written with one keeps it.
    WHEN {name} THEN
        IF NEW.{tenant} IS NOT NULL THEN
            RETURN NEW;
        END IF;
        NEW.{tenant} := {value};
