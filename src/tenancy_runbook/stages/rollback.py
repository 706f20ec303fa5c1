"""90_rollback: the seed's emergency rollback, workspaceId nullable again.

Not in the default sequence: runbooks/rollback.yaml runs it, and only with confirm=True.
Migration 1 stays (the seed: nullable columns are safe).
"""

from __future__ import annotations

import time

import pandas as pd
import psycopg

from .. import checks, db
from ..errors import GateFailed


def run(conn: psycopg.Connection, confirm: bool, lock_timeout: str) -> pd.DataFrame:
    """DROP NOT NULL on the four columns; before and after per table."""
    if confirm is not True:
        raise GateFailed("Rollback not confirmed: nothing was changed. This makes workspaceId "
                         "nullable again on all four tables; run it with -p confirm true.")
    checks.require_columns(conn, "90_rollback")
    before = checks.column_state(conn)
    started = time.monotonic()
    if (before["workspaceId"] == "NOT NULL").any():
        with checks.ddl_transaction(conn, lock_timeout, "rollback (DROP NOT NULL)"):
            db.execute(conn, "rollback/drop_not_null")
    after = checks.column_state(conn)
    out = pd.DataFrame({"table": before["table"], "before": before["workspaceId"],
                        "after": after["workspaceId"]})
    out["changed"] = out["before"] != out["after"]
    out.attrs["seconds"] = round(time.monotonic() - started, 3)
    return out
