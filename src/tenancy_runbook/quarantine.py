"""Rows that cannot be migrated are kept, restorable, in the schema ``datahub_quarantine``.

One table per source table, same name and columns, plus ``reason``, ``run_id`` and
``quarantined_at``. A move is one statement (DELETE ... RETURNING feeding an INSERT), so a
row is always either live or in quarantine, never both, never neither, whatever stops the
run. Dependent rows go first (a connection's MetricDaily and Insight rows), then the row
itself, so no foreign key action (CASCADE, SET NULL) touches them on the way.
"""

from __future__ import annotations

import re

import pandas as pd
import psycopg

from . import TENANT_TABLES, db
from .errors import GateFailed

SQL = ("quarantine/present", "quarantine/columns", "quarantine/ensure_table", "quarantine/move_by_id",
       "quarantine/move_by_connection", "quarantine/move_unplaced", "quarantine/summary",
       "quarantine/restore_conflicts", "quarantine/restore_conflicts_connection", "quarantine/restoring",
       "quarantine/restore", "quarantine/workspace_nullable")

SCHEMA = "datahub_quarantine"
CHUNK = 5000          # rows per move transaction
RESTORE_ORDER = ("Connection", "MetricDaily", "Insight", "ChatMessage")
QUARANTINE_ORDER = ("Insight", "MetricDaily", "ChatMessage", "Connection")   # dependents first


def columns(conn: psycopg.Connection, table: str, schema: str | None = None) -> list[str]:
    return [r["column"] for r in db.rows(conn, "quarantine/columns", {"schema": schema, "table": table})]


def ensure_table(conn: psycopg.Connection, table: str) -> list[str]:
    """Create datahub_quarantine.<table> if needed; the source columns both share."""
    with conn.transaction():
        db.execute(conn, "quarantine/ensure_table", table=table)
    source, kept = columns(conn, table), columns(conn, table, SCHEMA)
    missing = [c for c in source if c not in kept]
    if missing:
        raise GateFailed(f"{SCHEMA}.{table} lacks column(s) {', '.join(missing)} of {table}; it was "
                         "created for an older schema. Add them to it, then run again.")
    if "workspaceId" in kept:
        with conn.transaction():
            db.execute(conn, "quarantine/workspace_nullable", quarantine=(SCHEMA, table))
    return source


def _move(conn, statement: str, table: str, params: dict, cols: list[str]) -> int:
    with conn.transaction():
        return db.execute(conn, statement, params, table=table, quarantine=(SCHEMA, table), columns=cols)


def move_connections(conn: psycopg.Connection, ids: list[str], reason: str, run_id: str) -> dict:
    """Move connections and every row that references them. Rows moved per table."""
    moved = {t: 0 for t in TENANT_TABLES}
    if not ids:
        return moved
    for table in ("Insight", "MetricDaily"):
        cols = ensure_table(conn, table)
        while n := _move(conn, "quarantine/move_by_connection", table,
                         {"ids": ids, "limit": CHUNK, "reason": reason, "run_id": run_id}, cols):
            moved[table] += n
    cols = ensure_table(conn, "Connection")
    moved["Connection"] = _move(conn, "quarantine/move_by_id", "Connection",
                                {"ids": ids, "reason": reason, "run_id": run_id}, cols)
    return moved


def collisions(conn: psycopg.Connection, collision_frame: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """For each colliding (workspaceId, provider), keep the most recently updated connection
    and quarantine the others with their rows. One row per pair: what was kept and moved."""
    out = []
    for r in collision_frame.itertuples():
        kept, losers = r.connection_ids[0], list(r.connection_ids[1:])
        reason = (f"collision on (workspaceId, provider) = ({r.workspaceId}, {r.provider}): "
                  f"kept {kept}, the most recently updated")
        moved = move_connections(conn, losers, reason, run_id)
        out.append({"workspaceId": r.workspaceId, "provider": r.provider, "kept": kept,
                    "moved": ", ".join(losers), "metric_rows_moved": moved["MetricDaily"],
                    "insights_moved": moved["Insight"]})
    return pd.DataFrame(out, columns=["workspaceId", "provider", "kept", "moved",
                                      "metric_rows_moved", "insights_moved"])


def unplaced(conn: psycopg.Connection, run_id: str) -> pd.DataFrame:
    """Move every row still without a workspaceId (the backfill could not place it)."""
    reason = ("no workspace by the backfill rule: its user has no default workspace and owns "
              "none or several (orphan or ambiguous), or its connection has no workspace")
    out = []
    for table in QUARANTINE_ORDER:
        cols = ensure_table(conn, table)
        total = 0
        while n := _move(conn, "quarantine/move_unplaced", table,
                         {"limit": CHUNK, "reason": reason, "run_id": run_id}, cols):
            total += n
        out.append({"table": table, "rows_moved": total})
    return pd.DataFrame(out)


def summary(conn: psycopg.Connection) -> pd.DataFrame:
    """What the quarantine holds: rows per table, run and reason."""
    frames = [db.frame(conn, "quarantine/summary", {"table": t}, quarantine=(SCHEMA, t))
              for t in RESTORE_ORDER if db.one(conn, "quarantine/present", {"table": t})["present"]]
    frames = [f for f in frames if len(f)]
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=["table", "run_id", "reason", "rows"]))


def restore(conn: psycopg.Connection, run_id: str = "") -> pd.DataFrame:
    """Put quarantined rows back exactly as they were (all, or one run's); rows per table.

    Refuses, restoring nothing, when a row would break a constraint, naming the rows.
    """
    present = [t for t in RESTORE_ORDER if db.one(conn, "quarantine/present", {"table": t})["present"]]
    conflicts = []
    for table in present:
        found = db.rows(conn, "quarantine/restore_conflicts", {"run_id": run_id},
                        table=table, quarantine=(SCHEMA, table))
        if table == "Connection":
            found += db.rows(conn, "quarantine/restore_conflicts_connection", {"run_id": run_id})
        conflicts += [f"{table} {r['id']}: {r['problem']}" for r in found]
    if conflicts:
        raise GateFailed(f"Restore refused, nothing was restored: {len(conflicts)} quarantined row(s) "
                         "would break a constraint: " + "; ".join(conflicts[:20])
                         + ". Delete or change the live rows in the way (or restore another run_id).")
    out = []
    try:
        with conn.transaction():
            db.execute(conn, "quarantine/restoring")
            for table in present:
                cols = columns(conn, table)
                n = db.execute(conn, "quarantine/restore", {"run_id": run_id},
                               table=table, quarantine=(SCHEMA, table), columns=cols)
                out.append({"table": table, "rows_restored": n})
    except psycopg.errors.IntegrityError as exc:
        diag = exc.diag
        raise GateFailed(f"Restore refused, nothing was restored: {diag.message_primary} "
                         f"({diag.constraint_name or 'constraint'}; {_detail(diag)}). "
                         "Make room for that row (or roll back NOT NULL first), then run again.") from None
    return pd.DataFrame(out, columns=["table", "rows_restored"])


# Key columns whose values a message may show: ids and the like, never a personal field.
_SHOWN_KEYS = {"id", "userId", "connectionId", "workspaceId", "provider", "date", "metric"}
_KEY = re.compile(r'Key \((?P<columns>[^)]*)\)=')


def _detail(diag) -> str:
    """The server's DETAIL when it names only such key columns (``Key (userId, provider)=(...)``).
    Anything else ("Failing row contains (...)": every column of the row, an access token, a chat
    message) is not shown: the message reaches the notebook, the terminal and the manifest."""
    detail = diag.message_detail or ""
    key = _KEY.match(detail)
    if key and {c.strip().strip('"') for c in key["columns"].split(",")} <= _SHOWN_KEYS:
        return detail
    return (f"a row of {diag.table_name or 'the table'}" + (f", column {diag.column_name}" if diag.column_name else "")
            + "; its values are not shown")
