"""10_add_workspace_columns: migration 1 (nullable workspaceId, indexes, foreign keys).

The schema itself says whether it is applied: every object present means applied and
nothing is done; none present means it is applied now, in one transaction; a partial
state is refused with the list of what is missing.
"""

from __future__ import annotations

import time

import pandas as pd
import psycopg

from .. import checks, db
from ..errors import GateFailed

MIGRATION = "migrations/20251219170000_add_workspace_to_datahub_models/migration"


def detect(conn: psycopg.Connection) -> pd.DataFrame:
    """Each object migration 1 creates, and whether it exists."""
    return db.frame(conn, "add_workspace_columns/detect")


def apply(conn: psycopg.Connection, lock_timeout: str) -> dict:
    """Apply migration 1 unless the schema shows it applied. Returns what was done."""
    before = detect(conn)
    if before["present"].all():
        return {"action": "already applied: nothing to do", "seconds": 0.0}
    if before["present"].any():
        missing = before.loc[~before["present"], "name"].tolist()
        raise GateFailed(
            "Migration 1 is partly applied: missing " + ", ".join(missing) + ". "
            "Someone ran part of it by hand. Compare with "
            f"sql/{MIGRATION}.sql, create or drop the objects so the schema is all-or-nothing, "
            "then run this stage again.")
    started = time.monotonic()
    with checks.ddl_transaction(conn, lock_timeout, "migration 1"):
        db.execute(conn, MIGRATION)
    return {"action": "applied", "seconds": round(time.monotonic() - started, 3)}
