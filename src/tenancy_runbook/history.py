"""Which migrations are applied: Prisma's ``_prisma_migrations`` when it exists, else the
runbook's own ``tenancy_runbook.applied_migrations``.

A migration the runbook applies is recorded the way ``prisma migrate resolve --applied``
records it, so ``prisma migrate deploy`` afterwards sees it applied and does not run it again.
A migration the runbook writes itself is recorded the same way, by its name and the sha256 of
its text (:func:`record_applied`), and written into the run directory for the team to commit
(:func:`follow_up`): 90_rollback's, which makes migration 2's columns nullable again, and, when
40_enforce_not_null carries the migration forward again after such a rollback, the one that
makes them required again. Prisma reads its history in name order, so the last of migration 2
and these says what the columns are; each new one is named after the last.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from . import db
from .errors import GateFailed
from .paths import OUTPUTS_DIR, RUN_DIR_ENV, SQL_DIR

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


# ---------------------------------------------------------------------------------------------
# The migrations the runbook writes: after migration 2, the history's last word on the columns
# ---------------------------------------------------------------------------------------------
ROLLBACK = "_rollback"


@dataclass
class Recorded:
    """What follow_up did: a sentence for the notebook, the facts for its summary (the
    migration's file and checksum; none when there was nothing to record), and the file's text."""
    message: str
    facts: dict = field(default_factory=dict)
    sql: str = ""


def run_directory(run_id: str) -> Path:
    """Where a written migration folder goes: the runner's run directory (it names it in
    RUN_DIR_ENV); a notebook run on its own: outputs/<its run id>/."""
    given = os.environ.get(RUN_DIR_ENV, "").strip()
    return Path(given) if given else OUTPUTS_DIR / run_id


def last_word(conn: psycopg.Connection, migration: str) -> dict | None:
    """The last applied of ``migration`` (migration 2's folder name) and the migrations written
    after it: ``<timestamp>_<its name without timestamp>`` (required again) and the same with
    ``_rollback`` (nullable again). ``{"name", "checksum"}``, None when none is applied."""
    base = re.escape(migration.split("_", 1)[1])
    return newest_applied(conn, rf"^[0-9]{{14}}_{base}({ROLLBACK})?$")


def says_nullable(found: dict | None) -> bool:
    return bool(found) and found["name"].endswith(ROLLBACK)


def follow_up(conn: psycopg.Connection, migration: str, nullable: bool, text: str, run_id: str,
              commit: str) -> Recorded:
    """Make the history's last word on ``migration``'s columns agree with the database: nullable
    (90_rollback) or required again (40_enforce_not_null after a rollback). When the last word is
    already that, by a migration the runbook wrote (not migration 2 itself), it is reused: its
    file written again, nothing recorded; otherwise a new migration, named after the last one,
    is recorded as applied and written into the run directory. ``commit`` says with what the team
    commits it."""
    sha256 = digest(text)
    last = last_word(conn, migration)
    reuse = last is not None and last["name"] != migration and says_nullable(last) == nullable
    if reuse and last["checksum"] != sha256:
        raise GateFailed(f"{last['name']} is recorded as applied with checksum {last['checksum']}, but the "
                         f"migration.sql the runbook writes for it is now {sha256}: nothing was recorded or "
                         f"written. Compare prisma/migrations/{last['name']}/migration.sql with this text:\n{text}")
    if reuse:
        name = last["name"]
    else:
        stamp = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
        if last is not None:              # after the last word, in name order too
            stamp = max(stamp, datetime.strptime(last["name"][:14], "%Y%m%d%H%M%S") + timedelta(seconds=1))
        name = f"{stamp:%Y%m%d%H%M%S}_{migration.split('_', 1)[1]}{ROLLBACK if nullable else ''}"
    where = record_applied(conn, name, sha256, run_id)
    done = "already recorded" if reuse else "recorded"
    facts = {"prisma_migration": f"{name}/migration.sql", "prisma_migration_sha256": sha256,
             "prisma_history": f"{done} as applied in {where}"}
    path = run_directory(run_id) / name / "migration.sql"
    if path.is_file() and path.read_bytes() != text.encode():
        raise GateFailed(f"{path} exists with another text; it was left as it is ({name} {done} as applied "
                         f"in {where}, checksum {sha256}).")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return Recorded(f"{name} {done} as applied in {where}. Wrote {path}: commit it as "
                    f"prisma/migrations/{name}/migration.sql, {commit}.", facts, text)
