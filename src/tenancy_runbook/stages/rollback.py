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
    Once per rollback: a second one finds it recorded, reuses its name and writes the same file;
    after 40_enforce_not_null carried the migration forward again (and recorded that), a rollback
    is a new migration again (history.follow_up).
"""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import checks, db, history, locks, quarantine, runbook, runlock, spec
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl
from .enforce_not_null import check_name, prisma_steps
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


def migration_sql() -> str:
    """The rollback's Prisma migration: what `prisma migrate dev` generates when the fields
    migration 2 made required become optional again (``String?``). One ``-- AlterTable`` step
    per table, in migration 2's order, each the statement this stage runs
    (sql/rollback/drop_not_null.sql)."""
    return prisma_steps("rollback/drop_not_null")


def record_in_history(conn: psycopg.Connection, run_id: str) -> history.Recorded:
    """After drop_not_null, Prisma's history agrees with the database: the rollback's migration
    (migration_sql()) recorded as applied and written into the run directory; once per rollback
    (a second one reuses it; one after the migration was carried forward again is new)."""
    if not history.is_applied(conn, not_null().name):
        return history.Recorded(f"Prisma's history: nothing to record. {not_null().name} is not recorded as "
                                f"applied in {history.where(conn)}, so the history already has the columns nullable.")
    return history.follow_up(conn, not_null().name, True, migration_sql(), run_id,
                             "in the same commit as the schema change (the fields optional again: String?)")
