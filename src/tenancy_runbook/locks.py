"""DDL that never queues writers: a short lock_timeout, retries with backoff, a record.

A DDL statement waiting for its lock queues every later query on the table behind it.
So each DDL step waits at most ``lock_timeout``; when it cannot get the lock it gives up,
sleeps (exponential backoff with full jitter) and tries again, up to a bounded total.
When it gives up for good, the error names the sessions holding locks on the table.
Every step is recorded: attempts, time spent waiting, time the successful attempt took
(for the brief DDL steps, how long it held its lock).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import psycopg

from . import db
from .errors import GateFailed
from .params import PARAMS

SQL = ("common/set_config", "common/reset_setting", "locks/blockers")


@dataclass
class RetryPolicy:
    """How a DDL step waits and retries. The first three fields are the notebook parameters of
    the same names (params.py, whose defaults they take); nb.retry_policy fills them by name."""
    lock_timeout: str = PARAMS["lock_timeout"].default              # one attempt's wait for its lock
    statement_timeout: str = PARAMS["statement_timeout"].default    # one statement's run (VALIDATE scans)
    ddl_retry_total_s: float = PARAMS["ddl_retry_total_s"].default  # give up after this long in all
    first_backoff_ms: float = 100.0   # sleep after the first failed attempt (then doubling)
    max_backoff_ms: float = 5000.0    # longest sleep between attempts

    def backoff(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt ``attempt`` (1-based): full jitter."""
        ceiling = min(self.max_backoff_ms, self.first_backoff_ms * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling) / 1000.0


@dataclass
class DDLLog:
    """The record of every DDL step a stage ran, for the notebook's table."""
    steps: list = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.steps, columns=["step", "table", "attempts", "waited_ms",
                                                 "held_ms", "result"])


def run_ddl(conn: psycopg.Connection, step: str, tables: list[str], action: Callable[[], object],
            policy: RetryPolicy, log: DDLLog, queues_writers: bool = True, transaction: bool = True):
    """Run ``action`` (one DDL statement or transaction on ``conn``) under ``policy``.

    ``queues_writers=False`` is for statements whose lock (SHARE UPDATE EXCLUSIVE: CREATE/DROP
    INDEX CONCURRENTLY, VALIDATE CONSTRAINT) conflicts with no writer, so a writer never queues
    behind them while they wait: they may wait for old transactions as long as
    statement_timeout allows, instead of failing after lock_timeout on a busy database.
    ``transaction=False`` is for the statements that cannot run in one (CONCURRENTLY); every
    other step is its own explicit transaction, so a failure leaves nothing half-done. The
    timeouts are set in that transaction (db.settings), never left on the session.
    """
    with db.settings(conn, lock_timeout=policy.lock_timeout if queues_writers else "0",
                     statement_timeout=policy.statement_timeout):
        return _attempts(conn, step, tables, action, policy, log, transaction)


def _attempts(conn, step, tables, action, policy, log, transaction):
    started = time.monotonic()
    attempt, waited = 0, 0.0
    while True:
        attempt += 1
        t0 = time.monotonic()
        try:
            with conn.transaction() if transaction else db.outside_transaction(conn):
                result = action()
        except psycopg.errors.LockNotAvailable:
            waited += time.monotonic() - t0
            elapsed = time.monotonic() - started
            if elapsed >= policy.ddl_retry_total_s:
                log.steps.append({"step": step, "table": ", ".join(tables), "attempts": attempt,
                                  "waited_ms": round(waited * 1000), "held_ms": None,
                                  "result": "gave up"})
                raise GateFailed(_gave_up(conn, step, tables, attempt, elapsed, policy)) from None
            pause = min(policy.backoff(attempt), max(0.0, policy.ddl_retry_total_s - elapsed))
            time.sleep(pause)
            waited += pause
            continue
        held = time.monotonic() - t0
        log.steps.append({"step": step, "table": ", ".join(tables), "attempts": attempt,
                          "waited_ms": round(waited * 1000), "held_ms": round(held * 1000, 1),
                          "result": "ok"})
        return result


def blockers(conn: psycopg.Connection, tables: list[str]) -> pd.DataFrame:
    return db.frame(conn, "locks/blockers", {"tables": list(tables)})


def _gave_up(conn, step, tables, attempts, elapsed, policy) -> str:
    try:
        found = blockers(conn, tables)
    except psycopg.Error:
        found = pd.DataFrame()
    who = "; ".join(f"pid {r.pid} ({r.user}, {r.application_name or 'no application_name'}, "
                    f"{r.state}, transaction open {r.transaction_age}, holds {r.mode} on {r.table}): "
                    f"{r.query}" for r in found.itertuples()) or "none found any more"
    return (f"{step}: could not get a lock on {', '.join(tables)} in {attempts} attempts over "
            f"{elapsed:.1f}s (lock_timeout={policy.lock_timeout} each, "
            f"ddl_retry_total_s={policy.ddl_retry_total_s:g}). "
            f"Nothing of this step was changed. Blocking sessions: {who}. "
            "Let them finish (or end them with pg_terminate_backend(pid) if that is safe), "
            "then run the stage again; it continues where it stopped.")
