"""90_rollback: the seed's emergency rollback, and the way back out of quarantine.

Not in the default sequence: runbooks/rollback.yaml runs it, and only with confirm=True.
  * workspaceId becomes nullable again on the four tables (DROP NOT NULL); a CHECK left by
    an interrupted 40_enforce_not_null goes too. Migration 1 stays (the seed: it is safe).
  * with restore_quarantine=True, quarantined rows go back exactly as they were (all, or
    those of quarantine_run_id); refused, restoring nothing, when a row would break a
    constraint.
"""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import TENANT_TABLES, checks, db, locks, quarantine, runlock
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl
from .enforce_not_null import check_name

SQL = (checks.SQL + ("enforce_not_null/drop_check", "rollback/drop_not_null") + quarantine.SQL + locks.SQL + runlock.WRITER_SQL)


def drop_not_null(conn: psycopg.Connection, confirm: bool, policy: RetryPolicy, log: DDLLog) -> pd.DataFrame:
    """DROP NOT NULL (and the runbook's CHECK) on the four columns; before and after per table."""
    if confirm is not True:
        raise GateFailed("Rollback not confirmed: nothing was changed. This makes workspaceId "
                         "nullable again on all four tables; run it with -p confirm true.")
    checks.require_columns(conn, "90_rollback")
    before = checks.column_state(conn)
    for table in TENANT_TABLES:
        run_ddl(conn, f"{table}: drop CHECK", [table],
                lambda t=table: db.execute(conn, "enforce_not_null/drop_check", table=t,
                                           constraint=check_name(t)), policy, log)
        if before.set_index("table").loc[table, "workspaceId"] == "NOT NULL":
            run_ddl(conn, f"{table}: DROP NOT NULL", [table],
                    lambda t=table: db.execute(conn, "rollback/drop_not_null", table=t), policy, log)
    after = checks.column_state(conn)
    out = pd.DataFrame({"table": before["table"], "before": before["workspaceId"],
                        "after": after["workspaceId"]})
    out["changed"] = out["before"] != out["after"]
    return out


def preview(conn: psycopg.Connection) -> pd.DataFrame:
    """What drop_not_null would change, changing nothing (a dry run)."""
    checks.require_columns(conn, "90_rollback")
    before = checks.column_state(conn)
    out = pd.DataFrame({"table": before["table"], "before": before["workspaceId"],
                        "after": before["workspaceId"].replace("NOT NULL", "nullable")})
    out["changed"] = False
    return out


def restore(conn: psycopg.Connection, run_id: str = "") -> pd.DataFrame:
    return quarantine.restore(conn, run_id)
