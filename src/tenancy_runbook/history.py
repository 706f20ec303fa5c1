"""Which migrations are applied: Prisma's ``_prisma_migrations`` when it exists, else the
runbook's own ``tenancy_runbook.applied_migrations``.

A migration the runbook applies is recorded the way ``prisma migrate resolve --applied``
records it, so ``prisma migrate deploy`` afterwards sees it applied and does not run it again.
A migration the runbook writes itself (90_rollback's) is recorded the same way, by its name and
the sha256 of its text (:func:`record_applied`).
"""

from __future__ import annotations

import hashlib
import uuid

import psycopg

from . import db
from .paths import SQL_DIR

SQL = ("history/prisma_table", "history/prisma_applied", "history/prisma_roll_back_unfinished",
       "history/prisma_record", "history/prisma_newest_like", "history/own_table", "history/own_table_present",
       "history/own_applied", "history/own_record", "history/own_newest_like", "common/runbook_schema")


def digest(text: str | bytes) -> str:
    """sha256 of a migration.sql text, as 64 lowercase hex characters (Prisma's checksum)."""
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def checksum(migration: str) -> str:
    """Prisma's checksum of ``sql/<migration>.sql``."""
    return digest((SQL_DIR / f"{migration}.sql").read_bytes())


def name_of(migration: str) -> str:
    """migrations/20251219170000_x/migration -> 20251219170000_x"""
    return migration.split("/")[1]


def _prisma(conn: psycopg.Connection) -> bool:
    return db.one(conn, "history/prisma_table")["present"]


def where(conn: psycopg.Connection) -> str:
    """Where the record is kept: '_prisma_migrations' or 'tenancy_runbook.applied_migrations'."""
    return "_prisma_migrations" if _prisma(conn) else "tenancy_runbook.applied_migrations"


def is_recorded(conn: psycopg.Connection, migration: str) -> bool:
    return is_applied(conn, name_of(migration))


def is_applied(conn: psycopg.Connection, name: str) -> bool:
    """Is the migration folder ``name`` recorded as applied?"""
    if _prisma(conn):
        return db.one(conn, "history/prisma_applied", {"name": name})["applied"]
    if not db.one(conn, "history/own_table_present")["present"]:
        return False
    return db.one(conn, "history/own_applied", {"name": name})["applied"]


def newest_applied(conn: psycopg.Connection, pattern: str) -> dict | None:
    """The last applied migration (by name, so by its timestamp) whose name matches ``pattern``
    (a PostgreSQL regular expression): ``{"name", "checksum"}``; None when there is none."""
    if _prisma(conn):
        found = db.rows(conn, "history/prisma_newest_like", {"pattern": pattern})
    elif db.one(conn, "history/own_table_present")["present"]:
        found = db.rows(conn, "history/own_newest_like", {"pattern": pattern})
    else:
        found = []
    return found[0] if found else None


def record(conn: psycopg.Connection, migration: str, run_id: str) -> str:
    """Record ``sql/<migration>.sql`` as applied (once); returns where."""
    return record_applied(conn, name_of(migration), checksum(migration), run_id)


def record_applied(conn: psycopg.Connection, name: str, sha256: str, run_id: str) -> str:
    """Record the migration folder ``name``, whose migration.sql has the checksum ``sha256``,
    as applied (once); returns where."""
    if is_applied(conn, name):
        return where(conn)
    with conn.transaction():
        if _prisma(conn):
            db.execute(conn, "history/prisma_roll_back_unfinished", {"name": name})
            db.execute(conn, "history/prisma_record", {"id": str(uuid.uuid4()), "checksum": sha256,
                                                       "name": name})
        else:
            db.execute(conn, "history/own_table")
            db.execute(conn, "history/own_record", {"name": name, "checksum": sha256, "run_id": run_id})
    return where(conn)
