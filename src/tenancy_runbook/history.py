"""Which migrations are applied: Prisma's ``_prisma_migrations`` when it exists, else the
runbook's own ``tenancy_runbook.applied_migrations``.

A migration the runbook applies is recorded the way ``prisma migrate resolve --applied``
records it, so ``prisma migrate deploy`` afterwards sees it applied and does not run it again.
"""

from __future__ import annotations

import hashlib
import uuid

import psycopg

from . import db
from .paths import SQL_DIR

SQL = ("history/prisma_table", "history/prisma_applied", "history/prisma_roll_back_unfinished",
       "history/prisma_record", "history/own_table", "history/own_table_present", "history/own_applied",
       "history/own_record")


def checksum(migration: str) -> str:
    """sha256 of the migration.sql text, as 64 lowercase hex characters (Prisma's checksum)."""
    return hashlib.sha256((SQL_DIR / f"{migration}.sql").read_bytes()).hexdigest()


def name_of(migration: str) -> str:
    """migrations/20251219170000_x/migration -> 20251219170000_x"""
    return migration.split("/")[1]


def where(conn: psycopg.Connection) -> str:
    """Where the record is kept: '_prisma_migrations' or 'tenancy_runbook.applied_migrations'."""
    if db.one(conn, "history/prisma_table")["present"]:
        return "_prisma_migrations"
    return "tenancy_runbook.applied_migrations"


def is_recorded(conn: psycopg.Connection, migration: str) -> bool:
    name = name_of(migration)
    if db.one(conn, "history/prisma_table")["present"]:
        return db.one(conn, "history/prisma_applied", {"name": name})["applied"]
    if not db.one(conn, "history/own_table_present")["present"]:
        return False
    return db.one(conn, "history/own_applied", {"name": name})["applied"]


def record(conn: psycopg.Connection, migration: str, run_id: str) -> str:
    """Record ``migration`` as applied (once); returns where."""
    if is_recorded(conn, migration):
        return where(conn)
    name, digest = name_of(migration), checksum(migration)
    with conn.transaction():
        if db.one(conn, "history/prisma_table")["present"]:
            db.execute(conn, "history/prisma_roll_back_unfinished", {"name": name})
            db.execute(conn, "history/prisma_record", {"id": str(uuid.uuid4()), "checksum": digest,
                                                       "name": name})
        else:
            db.execute(conn, "history/own_table")
            db.execute(conn, "history/own_record", {"name": name, "checksum": digest, "run_id": run_id})
    return where(conn)
