"""10_add_workspace_columns: migration 1, online.

The end state is exactly migration.sql's (same names, same definitions, so Prisma sees no
drift), reached without blocking writers for longer than lock_timeout:
  * columns: ADD COLUMN (nullable, no default: no rewrite), brief lock;
  * indexes: CREATE [UNIQUE] INDEX CONCURRENTLY, outside a transaction; a failed concurrent
    build leaves an INVALID index, which is dropped (concurrently) and built again;
  * foreign keys: ADD ... NOT VALID (brief lock), then VALIDATE CONSTRAINT in its own
    transaction (a scan that lets reads and writes go on).
Each step is skipped when the schema shows it done, so a stopped run continues.
"""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import db, history, interactive, locks, runlock
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl

READ_ONLY = False   # it writes (outside the runner only with confirm=True)
MIGRATION = "migrations/20251219170000_add_workspace_to_datahub_models/migration"
INDEXES = ("Connection_workspaceId_provider_key", "MetricDaily_workspaceId_date_idx",
           "Insight_workspaceId_idx", "ChatMessage_workspaceId_createdAt_idx")
SQL = (("add_workspace_columns/detect", "add_workspace_columns/add_column")
       + tuple(f"add_workspace_columns/{i}" for i in INDEXES)
       + ("add_workspace_columns/drop_index", "add_workspace_columns/add_foreign_key",
          "common/validate_constraint") + locks.SQL + history.SQL + runlock.WRITER_SQL + interactive.SQL)


def detect(conn: psycopg.Connection) -> pd.DataFrame:
    """Each object migration 1 creates: present, and complete (valid / validated)."""
    return db.frame(conn, "add_workspace_columns/detect")


def apply(conn: psycopg.Connection, policy: RetryPolicy, run_id: str, log: DDLLog) -> dict:
    """Bring the schema to migration 1, step by step; record it as applied. What was done."""
    state = detect(conn)
    recorded = history.is_recorded(conn, MIGRATION)
    if recorded and state["complete"].all():
        return {"action": f"already applied (recorded in {history.where(conn)}): nothing to do"}
    if recorded:
        missing = state.loc[~state["complete"], "name"].tolist()
        raise GateFailed(f"Migration 1 is recorded as applied in {history.where(conn)}, but the "
                         f"schema lacks: {', '.join(missing)}. Someone changed the schema by hand; "
                         f"compare it with sql/{MIGRATION}.sql before going on.")
    for row in state.itertuples():
        if row.complete:
            continue
        if row.kind == "column":
            run_ddl(conn, f"add column {row.name}", [row.table],
                    lambda t=row.table: db.execute(conn, "add_workspace_columns/add_column", table=t),
                    policy, log)
        elif row.kind == "index":
            run_ddl(conn, f"build index {row.name}", [row.table],
                    lambda r=row: _build_index(conn, r.name), policy, log, queues_writers=False,
                    transaction=False)
        else:
            if not row.present:
                run_ddl(conn, f"add {row.name} NOT VALID", [row.table, "Workspace"],
                        lambda r=row: db.execute(conn, "add_workspace_columns/add_foreign_key",
                                                 table=r.table, constraint=r.name), policy, log)
            run_ddl(conn, f"validate {row.name}", [row.table, "Workspace"],
                    lambda r=row: db.execute(conn, "common/validate_constraint",
                                             table=r.table, constraint=r.name), policy, log,
                    queues_writers=False)
    after = detect(conn)
    if not after["complete"].all():
        raise GateFailed("Migration 1 incomplete after the stage: "
                         + ", ".join(after.loc[~after["complete"], "name"]) + ". Run the stage again.")
    where = history.record(conn, MIGRATION, run_id)
    done = "applied" if not state["complete"].all() else "already in the schema"
    return {"action": f"{done}; recorded in {where}"}


def _build_index(conn: psycopg.Connection, name: str) -> None:
    """Drop an INVALID leftover, then build concurrently (both outside a transaction)."""
    present, valid = _index_state(conn, name)
    if present and not valid:
        db.execute(conn, "add_workspace_columns/drop_index", index=name)
    try:
        db.execute(conn, f"add_workspace_columns/{name}")
    except psycopg.errors.UniqueViolation as exc:
        raise GateFailed(f"building {name} failed: {str(exc).strip()}. Two connections already share "
                         "a (workspaceId, provider). The failed build left an INVALID index, which the "
                         "next run drops and rebuilds. Resolve the duplicates (00_preflight, "
                         "30_check_backfill list them), then run this stage again.") from None
    if not _index_state(conn, name)[1]:
        raise GateFailed(f"index {name} is INVALID after its concurrent build; run the stage again "
                         "(it drops and rebuilds it).")


def _index_state(conn: psycopg.Connection, name: str) -> tuple[bool, bool]:
    """(exists, valid) for one of migration 1's indexes."""
    state = detect(conn).set_index("name").loc[name]
    return bool(state["present"]), bool(state["complete"])


def plan(conn: psycopg.Connection) -> interactive.Plan:
    """What apply() would do now, changing nothing (a dry run): each step still to do, in order,
    with the statement it runs."""
    state = detect(conn)
    recorded = history.is_recorded(conn, MIGRATION)
    if recorded and not state["complete"].all():
        missing = ", ".join(state.loc[~state["complete"], "name"])
        return interactive.plan("10_add_workspace_columns", [], refusal=(
            f"Migration 1 is recorded as applied in {history.where(conn)}, but the schema lacks: {missing}. "
            f"Someone changed the schema by hand; compare it with sql/{MIGRATION}.sql before going on."))
    steps = []
    for row in state.itertuples():
        if row.complete:
            continue
        if row.kind == "column":
            steps.append({"step": f"add column {row.name} (nullable)", "table": row.table,
                          "sql": interactive.statement("add_workspace_columns/add_column", table=row.table)})
        elif row.kind == "index":
            if row.present:
                steps.append({"step": f"drop the INVALID leftover of index {row.name}", "table": row.table,
                              "sql": interactive.statement("add_workspace_columns/drop_index", index=row.name)})
            steps.append({"step": f"build index {row.name}", "table": row.table,
                          "sql": interactive.statement(f"add_workspace_columns/{row.name}")})
        else:
            if not row.present:
                steps.append({"step": f"add foreign key {row.name} NOT VALID", "table": row.table,
                              "sql": interactive.statement("add_workspace_columns/add_foreign_key",
                                                           table=row.table, constraint=row.name)})
            steps.append({"step": f"validate foreign key {row.name}", "table": row.table,
                          "sql": interactive.statement("common/validate_constraint", table=row.table,
                                                       constraint=row.name)})
    if not recorded:
        steps.append({"step": f"record migration 1 as applied in {history.where(conn)}"})
    return interactive.plan("10_add_workspace_columns", steps)
