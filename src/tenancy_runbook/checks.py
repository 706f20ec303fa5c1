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
    """For a chart: ``frame``'s rows (a frame of preflight.collisions or check_backfill.duplicates)
    aggregated per value of each unique key's columns other than the tenant column (Data Hub: per
    provider), one row for every value in the database, zeros included. ``counts`` are pandas
    named aggregations (name=(column, how)). The first column is the value: named after the column
    when the spec has one such key column (``provider``), else ``key`` ("table: v1, v2")."""
    s = spec.active()
    keys = [(k.table, [c for c in k.columns if c != s.tenant.name]) for k in s.unique_keys]
    single = len(keys) == 1 and len(keys[0][1]) == 1
    by = keys[0][1][0] if single else "key"
    parts = []
    for table, others in keys:
        values = pd.DataFrame(db.rows(conn, "common/providers", table=table, columns=others), columns=others)
        values = values.sort_values(others, ignore_index=True)
        rows = frame[frame["table"] == table] if len(frame) else frame
        grouped = rows.groupby(others).agg(**counts) if len(rows) else pd.DataFrame(columns=list(counts))
        part = values.merge(grouped, how="left", left_on=others, right_index=True)
        label = part[others].astype(str).agg(", ".join, axis=1) if len(part) else pd.Series(dtype=str)
        parts.append(part.assign(**{by: label if single else table + ": " + label}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[by, *counts])
    return out.fillna(0).astype({name: int for name in counts})[[by, *counts]]


def per_unique_key(found_for, tail: list[str]) -> pd.DataFrame:
    """One frame over every unique key of the spec: ``found_for(key)`` (a frame of that key's
    groups) with ``table`` and ``index`` in front, the keys' columns (a column of another key's
    table is NaN), then ``tail``. preflight.collisions and check_backfill.duplicates."""
    frames, columns = [], ["table", "index"]
    for key in spec.active().unique_keys:
        found = found_for(key)
        found.insert(0, "table", key.table)
        found.insert(1, "index", key.index)
        frames.append(found)
        columns += [c for c in key.columns if c not in columns]
    columns += tail
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
