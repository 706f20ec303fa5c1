"""40_enforce_not_null: migration 2, online.

First a last sweep (the backfill once more, then the orphans' rows per on_orphan). Then the
seed's Option B semantics: with any NULL left it refuses, with the counts, before any
change. Then, per table, the recipe that never holds a lock for a table scan:
  CHECK ("workspaceId" IS NOT NULL) NOT VALID  -> VALIDATE CONSTRAINT (writers go on)
  -> SET NOT NULL (no scan: the valid CHECK proves it) -> DROP the CHECK.
Each DDL step waits at most lock_timeout per attempt and retries with backoff.
"""

from __future__ import annotations

import psycopg

from .. import TENANT_TABLES, checks, db, history
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl
from . import backfill

MIGRATION = "migrations/20251219171000_datahub_workspace_not_null/migration"
SQL = (backfill.SQL + ("enforce_not_null/check_state", "enforce_not_null/add_check", "common/validate_constraint",
                      "enforce_not_null/set_not_null", "enforce_not_null/drop_check") + history.SQL)


def check_name(table: str) -> str:
    return f"tenancy_runbook_{table}_workspaceId_check"


def apply(conn: psycopg.Connection, policy: RetryPolicy, run_id: str, log: DDLLog) -> dict:
    checks.require_columns(conn, "40_enforce_not_null")
    states = checks.column_state(conn).set_index("table")["workspaceId"]
    recorded = history.is_recorded(conn, MIGRATION)
    if recorded and (states == "NOT NULL").all():
        return {"action": f"already applied (recorded in {history.where(conn)}): nothing to do"}
    counts = checks.null_counts(conn)
    if counts["nulls"].sum():
        raise GateFailed(checks.null_message(counts))
    for table in TENANT_TABLES:
        if states[table] == "NOT NULL":
            continue
        name = check_name(table)
        state = _check_state(conn, table)
        if state == "absent":
            run_ddl(conn, f"{table}: add CHECK NOT VALID", [table],
                    lambda t=table, n=name: db.execute(conn, "enforce_not_null/add_check", table=t, constraint=n),
                    policy, log)
        if state != "validated":
            try:
                run_ddl(conn, f"{table}: validate CHECK", [table],
                        lambda t=table, n=name: db.execute(conn, "common/validate_constraint", table=t,
                                                                   constraint=n),
                        policy, log, queues_writers=False)
            except psycopg.errors.CheckViolation:
                raise GateFailed(checks.null_message(checks.null_counts(conn))
                                 + " (a NULL arrived after the sweep; the CHECK now rejects new ones: "
                                 "run the stage again)") from None
        run_ddl(conn, f"{table}: SET NOT NULL", [table],
                lambda t=table: db.execute(conn, "enforce_not_null/set_not_null", table=t), policy, log)
    for table in TENANT_TABLES:
        if _check_state(conn, table) != "absent":
            run_ddl(conn, f"{table}: drop CHECK", [table],
                    lambda t=table: db.execute(conn, "enforce_not_null/drop_check", table=t,
                                               constraint=check_name(t)), policy, log)
    where = history.record(conn, MIGRATION, run_id)
    return {"action": f"applied; recorded in {where}"}


def _check_state(conn: psycopg.Connection, table: str) -> str:
    return db.one(conn, "enforce_not_null/check_state",
                  {"table": table, "constraint": check_name(table)})["state"]
