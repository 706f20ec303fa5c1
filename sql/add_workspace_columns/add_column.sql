-- Migration 1, step 1: the nullable tenant column. No default, so no table rewrite: the ACCESS
-- EXCLUSIVE lock is held for milliseconds (and waited for at most lock_timeout). {type} is the
-- spec's tenant type (text or varchar(N): the spec's schema allows no other today).
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {type}
