"""90_rollback: the seed's emergency rollback, and the way back out of quarantine.

Not in the default sequence: runbooks/rollback.yaml runs it, and only with confirm=True.
  * the tenant column becomes nullable again on the spec's tables (DROP NOT NULL); a CHECK left by
    an interrupted 40_enforce_not_null goes too. Migration 1 stays (the seed: it is safe).
  * with restore_quarantine=True, quarantined rows go back exactly as they were (all, or
    those of quarantine_run_id); refused, restoring nothing, when a row would break a
    constraint.
  * Prisma's history then agrees with the database (record_in_history): when migration 2 is
    recorded as applied, the Prisma migration that makes the columns nullable again (what
    `prisma migrate dev` generates for `String?`) is written into the run directory as
    <UTC timestamp>_<migration 2's name>_rollback/migration.sql, for the team to commit with
    the schema change, and recorded as applied the way migrations 1 and 2 are (history.py).
    Once: a later rollback finds it recorded, reuses its name and writes the same file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import psycopg

from .. import checks, db, history, interactive, locks, quarantine, runbook, runlock, spec
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl
from ..paths import OUTPUTS_DIR, RUN_DIR_ENV
from .enforce_not_null import check_name
from .enforce_not_null import migration as not_null

READ_ONLY = False   # it writes (only with confirm=True, under the runner too)
SQL = (checks.SQL + ("enforce_not_null/drop_check", "rollback/drop_not_null") + quarantine.SQL + locks.SQL
       + runlock.WRITER_SQL + history.SQL)
STAGE = "90_rollback"


def unconfirmed() -> str:
    """What an unconfirmed rollback under ``refuse_unconfirmed`` says (runbooks/rollback.yaml for
    Data Hub: the runbook beside the spec that runs this stage)."""
    return ("Rollback not confirmed: nothing was changed. Run it with -p confirm true "
            f"({runbook.command(STAGE)} -p confirm true).")


# migration 2's statements: ALTER TABLE "<Table>" ALTER COLUMN "<column>" SET NOT NULL;
_SET_NOT_NULL = re.compile(r'^ALTER TABLE "((?:[^"]|"")+)" ALTER COLUMN "(?:[^"]|"")+" SET NOT NULL;$', re.M)


def drop_not_null(conn: psycopg.Connection, confirm: bool, policy: RetryPolicy, log: DDLLog) -> pd.DataFrame:
    """DROP NOT NULL (and the runbook's CHECK) on the tenant column of the spec's tables; before and
    after per table."""
    s = spec.active()
    if confirm is not True:
        raise GateFailed(f"Rollback not confirmed: nothing was changed. This makes {s.tenant.name} "
                         f"nullable again on {', '.join(s.table_names)}; run it with -p confirm true.")
    checks.require_columns(conn, STAGE)
    before = checks.column_state(conn)
    for table in s.table_names:
        run_ddl(conn, f"{table}: drop CHECK", [table],
                lambda t=table: db.execute(conn, "enforce_not_null/drop_check", table=t,
                                           constraint=check_name(t)), policy, log)
        if before.set_index("table").loc[table, "state"] == "NOT NULL":
            run_ddl(conn, f"{table}: DROP NOT NULL", [table],
                    lambda t=table: db.execute(conn, "rollback/drop_not_null", table=t, column=s.tenant.name),
                    policy, log)
    after = checks.column_state(conn)
    out = pd.DataFrame({"table": before["table"], "before": before["state"], "after": after["state"]})
    out["changed"] = out["before"] != out["after"]
    return out


def preview(conn: psycopg.Connection) -> pd.DataFrame:
    """What drop_not_null would change, changing nothing (a dry run)."""
    checks.require_columns(conn, STAGE)
    before = checks.column_state(conn)
    out = pd.DataFrame({"table": before["table"], "before": before["state"],
                        "after": before["state"].replace("NOT NULL", "nullable")})
    out["changed"] = False
    return out


def restore(conn: psycopg.Connection, run_id: str = "") -> pd.DataFrame:
    return quarantine.restore(conn, run_id)


def rollback_name() -> str:
    """The rollback migration's name without its timestamp: migration 2's folder name without its
    timestamp, then _rollback (Data Hub: datahub_workspace_not_null_rollback)."""
    return not_null().name.split("_", 1)[1] + "_rollback"


def migration_sql() -> str:
    """The rollback's Prisma migration: what `prisma migrate dev` generates when the fields
    migration 2 made required become optional again (``String?``). One ``-- AlterTable`` step
    per table, in migration 2's order, each the statement this stage runs
    (sql/rollback/drop_not_null.sql)."""
    column = spec.active().tenant.name
    tables = [t.replace('""', '"') for t in _SET_NOT_NULL.findall(not_null().sql.read_text())]
    steps = [f"-- AlterTable\n{interactive.statement('rollback/drop_not_null', table=t, column=column)};"
             for t in tables]
    return "\n\n".join(steps) + "\n"


def run_directory(run_id: str) -> Path:
    """Where the migration folder goes: the runner's run directory (it names it in RUN_DIR_ENV);
    a notebook run on its own: outputs/<its run id>/."""
    given = os.environ.get(RUN_DIR_ENV, "").strip()
    return Path(given) if given else OUTPUTS_DIR / run_id


@dataclass
class Recorded:
    """What record_in_history did: a sentence for the notebook, the facts for its summary (the
    migration's file and checksum; none when there was nothing to record), and the file's text."""
    message: str
    facts: dict = field(default_factory=dict)
    sql: str = ""


def record_in_history(conn: psycopg.Connection, run_id: str) -> Recorded:
    """After drop_not_null, Prisma's history agrees with the database: the rollback's migration
    (migration_sql()) recorded as applied, once, and written into the run directory."""
    if not history.is_applied(conn, not_null().name):
        return Recorded(f"Prisma's history: nothing to record. {not_null().name} is not recorded as "
                        f"applied in {history.where(conn)}, so the history already has the columns nullable.")
    text = migration_sql()
    sha256 = history.digest(text)
    found = history.newest_applied(conn, rf"^[0-9]{{14}}_{rollback_name()}$")
    if found and found["checksum"] != sha256:
        raise GateFailed(f"{found['name']} is recorded as applied with checksum {found['checksum']}, but the "
                         f"rollback's migration.sql is now {sha256}: nothing was recorded or written. Compare "
                         f"prisma/migrations/{found['name']}/migration.sql with this text:\n{text}")
    name = found["name"] if found else f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}_{rollback_name()}"
    where = history.record_applied(conn, name, sha256, run_id)
    done = "already recorded" if found else "recorded"
    facts = {"prisma_migration": f"{name}/migration.sql", "prisma_migration_sha256": sha256,
             "prisma_history": f"{done} as applied in {where}"}
    commit = (f"prisma/migrations/{name}/migration.sql, in the same commit as the schema change "
              "(the fields optional again: String?)")
    path = run_directory(run_id) / name / "migration.sql"
    if path.is_file() and path.read_bytes() != text.encode():
        raise GateFailed(f"{path} exists with another text; it was left as it is ({name} {done} as applied "
                         f"in {where}, checksum {sha256}).")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return Recorded(f"{name} {done} as applied in {where}. Wrote {path}: commit it as {commit}.", facts, text)
