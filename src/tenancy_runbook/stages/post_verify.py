"""50_post_verify: the seed's verification queries, as assertions. Read-only."""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import TENANT_TABLES, checks, db

READ_ONLY = True    # its notebook connects read-only: it writes nothing
UNIQUE_INDEX = "Connection_workspaceId_provider_key"
SQL = checks.SQL + ("post_verify/columns", "post_verify/index", "post_verify/foreign_keys")


def columns(conn: psycopg.Connection) -> pd.DataFrame:
    return db.frame(conn, "post_verify/columns", {"tables": list(TENANT_TABLES)})


def unique_index(conn: psycopg.Connection, name: str = UNIQUE_INDEX) -> pd.DataFrame:
    return db.frame(conn, "post_verify/index", {"index": name})


def foreign_keys(conn: psycopg.Connection) -> pd.DataFrame:
    return db.frame(conn, "post_verify/foreign_keys", {"tables": list(TENANT_TABLES)})


def summary(cols: pd.DataFrame, index: pd.DataFrame, fks: pd.DataFrame, nulls: pd.DataFrame,
            index_name: str = UNIQUE_INDEX) -> pd.DataFrame:
    """One row per check: what was expected, what was found, ok or not."""
    nullable = dict(zip(cols["table"], cols["is_nullable"], strict=True))
    rows = [(f"{t}.workspaceId is_nullable", "NO", nullable.get(t, "absent")) for t in TENANT_TABLES]
    idx = index.iloc[0] if len(index) else None
    rows.append((f"{index_name} exists, unique and valid", "yes",
                 "missing" if idx is None else
                 "yes" if idx.indisunique and idx.indisvalid and idx.indisready else
                 f"unique={idx.indisunique} valid={idx.indisvalid} ready={idx.indisready}"))
    rows += [(f"{r.constraint_name} present and validated", "yes",
              "yes" if r.present and r.validated else "missing" if not r.present else "not validated")
             for r in fks.itertuples()]
    rows += [(f"{r.table} NULL workspaceId", "0", str(r.nulls)) for r in nulls.itertuples()]
    out = pd.DataFrame(rows, columns=["check", "expected", "found"])
    out["ok"] = out["expected"] == out["found"]
    return out


def problems(table: pd.DataFrame) -> list[str]:
    bad = table[~table["ok"]]
    if not len(bad):
        return []
    return [f"{r.check}: expected {r.expected}, found {r.found}" for r in bad.itertuples()] + [
        "Run the runbook again from the first failing stage (the runner's --from); "
        "an INVALID index must be dropped and created again."]


def null_counts(conn: psycopg.Connection) -> pd.DataFrame:
    checks.require_columns(conn, "50_post_verify")
    return checks.null_counts(conn)
