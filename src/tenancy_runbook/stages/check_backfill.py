"""30_check_backfill: the seed's datahub:check-workspace, and more.

NULLs per table, duplicates on (workspaceId, provider), and every workspaceId agreeing with
the backfill rule. Read-only.
"""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import checks, db

READ_ONLY = True    # its notebook connects read-only: it writes nothing
SUCCESS = "PASSED: All Data Hub workspaceId values are backfilled (no NULLs)."
SQL = checks.SQL + ("check_backfill/duplicates", "check_backfill/rule_mismatches", "common/user_workspace")


def null_counts(conn: psycopg.Connection) -> pd.DataFrame:
    checks.require_columns(conn, "30_check_backfill")
    return checks.null_counts(conn)


def duplicates(conn: psycopg.Connection) -> pd.DataFrame:
    return db.frame(conn, "check_backfill/duplicates")


def duplicates_by_provider(dups: pd.DataFrame, conn: psycopg.Connection) -> pd.DataFrame:
    """For the chart: duplicate (workspaceId, provider) groups per provider, zeros included."""
    return checks.per_provider(conn, dups, duplicate_pairs=("connections", "size"))


def rule_mismatches(conn: psycopg.Connection) -> pd.DataFrame:
    return db.frame(conn, "check_backfill/rule_mismatches")


def problems(nulls: pd.DataFrame, dups: pd.DataFrame, mismatches: pd.DataFrame) -> list[str]:
    """What is wrong, each with what to do; empty when the backfill is complete and right."""
    out = []
    if nulls["nulls"].sum():
        out.append(checks.null_message(nulls))
    if len(dups):
        out.append(f"{len(dups)} duplicate (workspaceId, provider) pair(s) in Connection: "
                   + "; ".join(f"({r.workspaceId}, {r.provider}): {', '.join(r.connection_ids)}"
                               for r in dups.head(20).itertuples())
                   + ". Keep one connection per workspace and provider.")
    bad = mismatches[mismatches["mismatches"] > 0]
    if len(bad):
        out.append("workspaceId disagrees with the backfill rule: "
                   + ", ".join(f"{r.table}: {r.mismatches}" for r in bad.itertuples())
                   + ". See sql/check_backfill/rule_mismatches.sql for the rule per table; "
                   "fix those rows (set them to NULL and re-run 20_backfill) before enforcing.")
    return out
