"""20_backfill: give every row its workspaceId by the backfill rule.

Tables go in dependency order (Connection before MetricDaily and Insight), each statement
only touches rows whose workspaceId is still NULL, so a re-run continues where a killed one
stopped and a finished one changes nothing.
"""

from __future__ import annotations

import time

import pandas as pd
import psycopg

from .. import checks, db
from ..errors import GateFailed

STEPS = (  # table, its statement in sql/
    ("Connection", "backfill/user_rows"),
    ("MetricDaily", "backfill/metric_daily"),
    ("Insight", "backfill/insight"),
    ("ChatMessage", "backfill/user_rows"),
)


def run(conn: psycopg.Connection, lock_timeout: str) -> pd.DataFrame:
    """Backfill each table in its own transaction; rows updated and seconds per table."""
    checks.require_columns(conn, "20_backfill")
    out = []
    for table, statement in STEPS:
        started = time.monotonic()
        try:
            with checks.ddl_transaction(conn, lock_timeout, f"backfill of {table}"):
                updated = db.execute(conn, statement, table=table)
        except psycopg.errors.UniqueViolation as exc:
            raise GateFailed(
                f"backfill of {table} stopped: {str(exc).strip()}. Two connections map to "
                "the same (workspaceId, provider). Nothing of this table was changed. "
                "Run 00_preflight to list the collisions and resolve them first.") from None
        out.append({"table": table, "rows_updated": updated,
                    "seconds": round(time.monotonic() - started, 3)})
    return pd.DataFrame(out)


def leftover(conn: psycopg.Connection) -> pd.DataFrame:
    """NULLs left per table, split into rows the rule cannot place and rows it could have."""
    nulls = checks.null_counts(conn)
    unplaced = db.frame(conn, "preflight/unplaceable_users")
    per_table = {"Connection": "connections", "MetricDaily": "metric_rows",
                 "Insight": "insights", "ChatMessage": "chat_messages"}
    nulls["unplaceable"] = [int(unplaced[per_table[t]].sum()) if len(unplaced) else 0 for t in nulls["table"]]
    nulls["unexplained"] = nulls["nulls"] - nulls["unplaceable"]
    return nulls[["table", "rows", "nulls", "unplaceable", "unexplained"]]
