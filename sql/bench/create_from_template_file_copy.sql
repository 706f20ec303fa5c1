-- A copy of the template while the bench's replica streams (PostgreSQL 15+): FILE_COPY writes
-- one WAL record and the standby copies the template's files itself, where the default
-- (WAL_LOG) would send every page of it through the WAL for the replica to replay first.
CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY
