"""40_enforce_not_null: migration 2 (workspaceId NOT NULL on the four tables).

The seed's Option B semantics: with any NULL left it refuses, with the counts, before any
change. Already NOT NULL everywhere: nothing to do.
"""

from __future__ import annotations

import time

import psycopg

from .. import checks, db
from ..errors import GateFailed

MIGRATION = "migrations/20251219171000_datahub_workspace_not_null/migration"


def apply(conn: psycopg.Connection, lock_timeout: str) -> dict:
    checks.require_columns(conn, "40_enforce_not_null")
    if (checks.column_state(conn)["workspaceId"] == "NOT NULL").all():
        return {"action": "already applied: nothing to do", "seconds": 0.0}
    started = time.monotonic()
    try:
        with checks.ddl_transaction(conn, lock_timeout, "migration 2 (SET NOT NULL)"):
            counts = checks.null_counts(conn)
            if counts["nulls"].sum():
                raise GateFailed(checks.null_message(counts))
            db.execute(conn, MIGRATION)
    except psycopg.errors.NotNullViolation:
        # a writer inserted a NULL between the count and the ALTER
        raise GateFailed(checks.null_message(checks.null_counts(conn))) from None
    return {"action": "applied", "seconds": round(time.monotonic() - started, 3)}
