"""20_backfill: every row gets its workspaceId by the backfill rule, online.

  1. Collisions: ``on_collision='fail'`` stops before any write; ``'quarantine'`` keeps the
     most recently updated connection of each colliding pair and moves the others, with their
     rows, to datahub_quarantine.
  2. The transition guard: a trigger on each table places rows that application servers of
     the old version keep writing without a workspaceId (removed by 60_remove_guard).
  3. Table by table in dependency order, batches that each are their own short transaction
     touching only rows still NULL: killed at any moment, nothing is lost and a re-run
     continues. The first pass walks the heap pages in physical order (TID ranges: the same
     I/O as one big UPDATE); a second pass, by primary key, takes what is still NULL after
     it. The batch size adapts toward a target duration.
  4. Rows the rule cannot place: ``on_orphan='fail'`` leaves them NULL (30_check_backfill then
     stops the runbook); ``'quarantine'`` moves them to datahub_quarantine.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import pandas as pd
import psycopg
from tqdm import tqdm

from .. import TENANT_TABLES, checks, db, locks, quarantine
from ..errors import GateFailed, RunbookError
from ..locks import DDLLog, RetryPolicy, run_ddl
from . import preflight

STEPS = (  # table, its first pass (pages in physical order), its second pass (keyset), in sql/
    ("Connection", "backfill/pages_user_rows", "backfill/batch_user_rows"),
    ("MetricDaily", "backfill/pages_metric_daily", "backfill/batch_metric_daily"),
    ("Insight", "backfill/pages_insight", "backfill/batch_insight"),
    ("ChatMessage", "backfill/pages_user_rows", "backfill/batch_user_rows"),
)
MAX_BATCH_PAGES = 4096   # 32 MB of heap: bounds a first-pass batch where few rows are NULL
from ..params import CHOICES, check_values  # fail | quarantine: every parameter is declared in params.py
PROGRESS_ENV = "TENANCY_RUNBOOK_PROGRESS"   # set by the runner: also draw progress on its terminal
SQL = (checks.SQL + preflight.SQL[len(checks.SQL):]
       + ("backfill/guard", "backfill/guard_trigger", "backfill/guard_state", "backfill/batch_settings",
          "backfill/extent", "backfill/analyze")
       + tuple(dict.fromkeys(statement for step in STEPS for statement in step[1:]))
       + quarantine.SQL + locks.SQL)


@dataclass
class BatchPolicy:
    batch_size: int = 1000          # first batch
    min_batch_size: int = 100
    max_batch_size: int = 50000
    target_batch_ms: float = 120.0  # the size adapts so a batch takes about this long
    pause_ms: float = 0.0           # sleep between batches (replica lag, I/O)
    statement_timeout: str = "5s"   # one batch may not run longer
    lock_timeout: str = "500ms"     # one batch may not wait longer for a row lock

    def check(self) -> "BatchPolicy":
        """Each value as params.py allows it (a RunbookError naming the bad ones)."""
        check_values({"batch_size": self.batch_size, "min_batch_size": self.min_batch_size,
                      "max_batch_size": self.max_batch_size, "target_batch_ms": self.target_batch_ms,
                      "batch_pause_ms": self.pause_ms, "batch_statement_timeout": self.statement_timeout,
                      "lock_timeout": self.lock_timeout})
        return self

    def next_size(self, size: int, ms: float) -> int:
        """Toward the target duration: growing by at most a quarter per batch (so one fast
        batch does not make the next overshoot), shrinking by up to half."""
        factor = min(1.25, max(0.5, self.target_batch_ms / max(ms, 1.0)))
        return int(min(self.max_batch_size, max(self.min_batch_size, size * factor)))


def check_choice(name: str, value: str) -> str:
    """``value`` of on_collision or on_orphan, if params.py allows it."""
    return check_values({name: value})[name]


def handle_collisions(conn: psycopg.Connection, on_collision: str, run_id: str) -> pd.DataFrame:
    """Before any write: fail on a projected collision, or quarantine the losing connections."""
    found = preflight.collisions(conn)
    if len(found) and check_choice("on_collision", on_collision) == "fail":
        raise GateFailed("Backfill refused, nothing was written: "
                         + preflight.problems(found, found.iloc[0:0])[0]
                         + " Or run with -p on_collision quarantine to keep the most recently "
                           "updated connection of each pair and quarantine the others.")
    return quarantine.collisions(conn, found, run_id)


def install_guard(conn: psycopg.Connection, policy: RetryPolicy, log: DDLLog) -> pd.DataFrame:
    """The transition guard on the four tables (idempotent)."""
    with conn.transaction():
        db.execute(conn, "backfill/guard")
    for table in TENANT_TABLES:
        run_ddl(conn, f"install guard on {table}", [table],
                lambda t=table: db.execute(conn, "backfill/guard_trigger", table=t), policy, log)
    return guard_state(conn)


def guard_state(conn: psycopg.Connection) -> pd.DataFrame:
    return db.frame(conn, "backfill/guard_state", {"tables": list(TENANT_TABLES)})


def run(conn: psycopg.Connection, policy: BatchPolicy, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keyset-batch every table; (rows updated per table, one row per batch)."""
    checks.require_columns(conn, "20_backfill")
    policy.check()
    if not guard_state(conn)["guarded"].all():
        raise GateFailed("The transition guard is not installed on every table: run "
                         "backfill.install_guard() first (the notebook does).")
    batches, totals = [], []
    for table, _, _ in STEPS:
        started = time.monotonic()
        done = backfill_table(conn, table, policy, batches, progress)
        totals.append({"table": table, "rows_updated": done,
                       "seconds": round(time.monotonic() - started, 3)})
    return pd.DataFrame(totals), pd.DataFrame(batches, columns=[
        "table", "pass", "batch", "size", "pages", "scanned", "updated", "ms", "rows_per_s"])


def backfill_table(conn: psycopg.Connection, table: str, policy: BatchPolicy, batches: list,
                   progress: bool) -> int:
    """Both passes over one table; the rows it updated."""
    pages_statement, keyset_statement = next(step[1:] for step in STEPS if step[0] == table)
    todo = int(db.one(conn, "common/null_count", table=table)["nulls"])
    if not todo:
        return 0
    bars = _bars(table, todo) if progress else []
    try:
        done = _page_pass(conn, table, pages_statement, policy, batches, bars, todo)
        if int(db.one(conn, "common/null_count", table=table)["nulls"]):
            # what is left is mostly rows the rule cannot place: fresh statistics let the
            # planner find them through the workspaceId index instead of walking the table
            db.execute(conn, "backfill/analyze", table=table)
            done += _keyset_pass(conn, table, keyset_statement, policy, batches, bars)
    finally:
        for bar in bars:
            bar.close()
    return done


def _page_pass(conn, table, statement, policy, batches, bars, todo) -> int:
    """Heap pages [0, the table's size now) in physical order; the batch size in rows is turned
    into pages by the NULL rows per page seen so far."""
    end = int(db.one(conn, "backfill/extent", {"table": table})["pages"])
    density = todo / max(1, end)          # NULL rows per page
    page, size, done, retries = 0, policy.batch_size, 0, 0
    while page < end:
        span = int(min(MAX_BATCH_PAGES, max(1, round(size / max(density, 1e-9)))))
        try:
            result, ms = _batch(conn, table, statement, {"lo": f"({page},0)", "hi": f"({page + span},0)"}, policy)
        except _Retry as retry:
            retries = retry.check(retries, table, f"pages {page} to {page + span - 1}")
            size = max(policy.min_batch_size, size // 2)
            continue
        retries = 0
        page += span
        density = result["scanned"] / span if result["scanned"] else density / 2
        done += _record(batches, table, "pages", size, span, result, ms, bars)
        size = policy.next_size(size, ms)
        _pause(policy)
    return done


def _keyset_pass(conn, table, statement, policy, batches, bars) -> int:
    """By primary key, until no NULL row is left after the last position."""
    after, size, done, retries = "", policy.batch_size, 0, 0
    while True:
        try:
            result, ms = _batch(conn, table, statement, {"after": after, "size": size}, policy)
        except _Retry as retry:
            retries = retry.check(retries, table, f"{size} rows after id {after!r}")
            size = max(policy.min_batch_size, size // 2)
            continue
        retries = 0
        if not result["scanned"]:
            return done
        done += _record(batches, table, "keyset", size, None, result, ms, bars)
        after = result["last_id"]
        size = policy.next_size(size, ms)
        _pause(policy)


def _pause(policy: BatchPolicy) -> None:
    """Between batches, when asked (replica lag, I/O)."""
    if policy.pause_ms:
        time.sleep(policy.pause_ms / 1000)


class _Retry(Exception):
    """A batch hit its lock or statement timeout (or a deadlock): nothing of it was written."""

    MAX = 8

    def check(self, retries: int, table: str, where: str) -> int:
        """Back off before the next try; give up with a clear message after MAX tries."""
        retries += 1
        if retries > self.MAX:
            raise GateFailed(f"backfill of {table}: the batch of {where} failed {retries} times "
                             f"({self.args[0]}). Nothing of that batch was written; earlier batches "
                             "are kept. Lower batch_size or raise batch_statement_timeout, then run the "
                             "stage again.") from None
        time.sleep(min(5.0, 0.1 * 2 ** retries))
        return retries


def _batch(conn, table, statement, params, policy) -> tuple[dict, float]:
    """One batch in its own transaction: its result and how long it took, in ms."""
    t0 = time.monotonic()
    try:
        with conn.transaction():
            db.execute(conn, "backfill/batch_settings", {"lock_timeout": policy.lock_timeout,
                                                          "statement_timeout": policy.statement_timeout})
            result = db.one(conn, statement, params, table=table)
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable,
            psycopg.errors.DeadlockDetected) as exc:
        raise _Retry(str(exc).strip()) from None
    except psycopg.errors.UniqueViolation as exc:
        raise GateFailed(f"backfill of {table} stopped: {str(exc).strip()}. Two connections map "
                         "to the same (workspaceId, provider): a collision that arrived after "
                         "the check. Earlier batches are kept; run the stage again (with "
                         "-p on_collision quarantine to move the loser aside).") from None
    return result, (time.monotonic() - t0) * 1000


def _record(batches, table, kind, size, pages, result, ms, bars) -> int:
    number = sum(1 for b in batches if b["table"] == table) + 1
    batches.append({"table": table, "pass": kind, "batch": number,
                    "size": size, "pages": pages, "scanned": result["scanned"], "updated": result["updated"],
                    "ms": round(ms, 1), "rows_per_s": round(result["scanned"] / (ms / 1000)) if ms else None})
    for bar in bars:
        bar.update(result["scanned"])
    return result["updated"]


def _bars(table: str, total: int) -> list:
    """A progress bar in the notebook, and one on the runner's terminal when it asks."""
    bars = [tqdm(total=total, desc=table, unit="row", file=sys.stdout, mininterval=1.0,
                 ascii=True, dynamic_ncols=False, ncols=90)]
    if os.environ.get(PROGRESS_ENV) == "1" and sys.__stderr__ is not None and sys.__stderr__.isatty():
        bars.append(tqdm(total=total, desc=f"  {table}", unit="row", file=sys.__stderr__,
                         mininterval=0.5, leave=False, position=0))
    return bars


def handle_unplaced(conn: psycopg.Connection, on_orphan: str, run_id: str) -> pd.DataFrame:
    """After the batches: quarantine what the rule could not place, or leave it for the gate."""
    if check_choice("on_orphan", on_orphan) == "quarantine":
        return quarantine.unplaced(conn, run_id)
    return pd.DataFrame({"table": list(TENANT_TABLES), "rows_moved": [0] * len(TENANT_TABLES)})


def leftover(conn: psycopg.Connection) -> pd.DataFrame:
    """NULLs left per table, split into rows the rule cannot place and rows it could have."""
    nulls = checks.null_counts(conn)
    # who cannot be placed is asked only when something is left (a join over MetricDaily)
    unplaced = preflight.unplaceable_users(conn) if nulls["nulls"].sum() else pd.DataFrame()
    per_table = {"Connection": "connections", "MetricDaily": "metric_rows",
                 "Insight": "insights", "ChatMessage": "chat_messages"}
    nulls["unplaceable"] = [int(unplaced[per_table[t]].sum()) if len(unplaced) else 0 for t in nulls["table"]]
    nulls["unexplained"] = nulls["nulls"] - nulls["unplaceable"]
    return nulls[["table", "rows", "nulls", "unplaceable", "unexplained"]]


def sweep(conn: psycopg.Connection, policy: BatchPolicy, on_orphan: str, run_id: str) -> pd.DataFrame:
    """Once more before enforcing: batches over what is still NULL, then the orphans' rows."""
    totals, _ = run(conn, policy, progress=False)
    moved = handle_unplaced(conn, on_orphan, run_id)
    return totals.merge(moved, on="table")


def batch_summary(batches: pd.DataFrame) -> pd.DataFrame:
    """Per table: batches, rows scanned, and batch duration and throughput (mean, max)."""
    columns = ["table", "batches", "rows", "ms_mean", "ms_max", "rows_per_s_mean"]
    if not len(batches):
        return pd.DataFrame(columns=columns)
    out = batches.groupby("table", sort=False).agg(
        batches=("batch", "count"), rows=("scanned", "sum"), ms_mean=("ms", "mean"),
        ms_max=("ms", "max"), rows_per_s_mean=("rows_per_s", "mean")).reset_index()
    return out.round(1)[columns]
