"""Queries more than one stage asks: column states, NULL counts, locks."""

from __future__ import annotations

import pandas as pd
import psycopg

from . import db, spec
from .errors import GateFailed

# the SQL files this module runs (tenancy-runbook plan lists them per stage)
SQL = ("common/set_config", "common/column_state", "common/row_count", "common/null_count",
       "common/providers")


def column_state(conn: psycopg.Connection, tables=None) -> pd.DataFrame:
    """One row per table (default: the tenancy spec's tables): ``table``, ``table_present``, and
    ``state``, its tenant column's state: absent, nullable or NOT NULL."""
    s = spec.active()
    tables = s.table_names if tables is None else tables
    return db.frame(conn, "common/column_state", {"tables": list(tables), "column": s.tenant.name})


def null_counts(conn: psycopg.Connection) -> pd.DataFrame:
    """Rows and NULL tenant columns per table of the spec; a missing column counts every row as NULL."""
    s = spec.active()
    states = column_state(conn).set_index("table")["state"]
    out = []
    for table in s.table_names:
        if states[table] == "absent":
            total = db.one(conn, "common/row_count", table=table)["rows"]
            out.append({"table": table, "rows": total, "nulls": total, "column": "absent"})
        else:
            counts = null_count(conn, table)
            out.append({"table": table, **counts, "column": states[table]})
    return pd.DataFrame(out, columns=["table", "rows", "nulls", "column"])


def null_count(conn: psycopg.Connection, table: str) -> dict:
    """``rows`` and ``nulls`` (rows without a tenant) of one table whose tenant column exists."""
    return db.one(conn, "common/null_count", table=table, column=spec.active().tenant.name)


def null_message(counts: pd.DataFrame) -> str:
    """The seed review's Option B message, with the counts per table and what to do."""
    per_table = ", ".join(f"{r.table}: {r.nulls}" for r in counts.itertuples())
    return (f"Cannot enforce NOT NULL: NULL values found. {per_table}. "
            "Run the backfill (stage 20_backfill) first, then 30_check_backfill; "
            "rows the rule cannot place are listed by 00_preflight.")


def require_columns(conn: psycopg.Connection, stage: str) -> None:
    """Refuse (GateFailed) when migration 1 has not added the tenant column to every table."""
    s = spec.active()
    states = column_state(conn)
    missing = states.loc[~states["table_present"], "table"].tolist()
    if missing:
        raise GateFailed(f"{stage}: tables missing: {', '.join(missing)}. Point DATABASE_URL "
                         f"at the database the tenancy spec '{s.name}' migrates (00_preflight shows what it found).")
    absent = states.loc[states["state"] == "absent", "table"].tolist()
    if absent:
        raise GateFailed(f"{stage}: no {s.tenant.name} column on {', '.join(absent)}. "
                         "Run stage 10_add_workspace_columns (migration 1) first.")


def per_provider(conn: psycopg.Connection, frame: pd.DataFrame, **counts) -> pd.DataFrame:
    """For a chart: ``frame``'s rows aggregated per provider, one row for every provider in the
    database, zeros included. ``counts`` are pandas named aggregations (name=(column, how))."""
    providers = sorted(r["provider"] for r in db.rows(conn, "common/providers"))
    grouped = (frame.groupby("provider").agg(**counts) if len(frame)
               else pd.DataFrame(columns=list(counts)))
    out = pd.DataFrame({"provider": providers}).merge(grouped, how="left", left_on="provider", right_index=True)
    return out.fillna(0).astype({name: int for name in counts})[["provider", *counts]]
