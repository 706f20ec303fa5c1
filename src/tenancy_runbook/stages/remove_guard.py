"""60_remove_guard: take the transition guard off once the rollout is over.

The guard (20_backfill) lets application servers of the old version keep writing rows
without a workspaceId, even after NOT NULL. Run this stage when no such server is left:
afterwards a row written without a workspaceId is rejected by NOT NULL.
"""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import TENANT_TABLES, db, locks, runlock
from ..locks import DDLLog, RetryPolicy, run_ddl
from .backfill import guard_state

SQL = ("remove_guard/drop_trigger", "remove_guard/drop_functions", "remove_guard/drop_schema_if_empty",
       "backfill/guard_state") + locks.SQL + runlock.WRITER_SQL


def run(conn: psycopg.Connection, policy: RetryPolicy, log: DDLLog) -> pd.DataFrame:
    for table in TENANT_TABLES:
        run_ddl(conn, f"remove guard from {table}", [table],
                lambda t=table: db.execute(conn, "remove_guard/drop_trigger", table=t), policy, log)
    with conn.transaction():
        db.execute(conn, "remove_guard/drop_functions")
    try:
        with conn.transaction():
            db.execute(conn, "remove_guard/drop_schema_if_empty")
    except psycopg.errors.DependentObjectsStillExist:
        pass   # it holds tenancy_runbook.applied_migrations: the runbook's record stays
    return guard_state(conn)
