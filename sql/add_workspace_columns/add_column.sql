-- Migration 1, step 1: the nullable tenant column. No default, so no table rewrite: the ACCESS
-- EXCLUSIVE lock is held for milliseconds (and waited for at most lock_timeout). {type} is the
-- spec's tenant type (text, uuid, integer, bigint, varchar(N)).
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {type}
