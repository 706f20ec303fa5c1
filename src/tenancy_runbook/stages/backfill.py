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
     it. The batch size adapts toward a target duration; a first-pass batch spans no more
     pages than that many rows fill at the densest seen (done rows included), so a re-run
     over mostly done pages meets the NULL remainder with a batch of the usual size. A batch
     that fails (timeout, lock timeout, deadlock) is tried again with half its span, down to
     one page or one row.
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

from .. import TENANT_TABLES, checks, db, locks, quarantine, runlock
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl
from ..params import CHOICES, check_values  # noqa: F401 (CHOICES: fail | quarantine, declared in params.py)
from . import preflight

STEPS = (  # table, its first pass (pages in physical order), its second pass (keyset), in sql/
    ("Connection", "backfill/pages_user_rows", "backfill/batch_user_rows"),
    ("MetricDaily", "backfill/pages_metric_daily", "backfill/batch_metric_daily"),
    ("Insight", "backfill/pages_insight", "backfill/batch_insight"),
    ("ChatMessage", "backfill/pages_user_rows", "backfill/batch_user_rows"),
)
MAX_BATCH_PAGES = 4096   # 32 MB of heap: the longest span of a first-pass batch
SAMPLE_PAGES = 1000      # pages read at random for the rows a full page holds (sql/backfill/density.sql)
PROGRESS_ENV = "TENANCY_RUNBOOK_PROGRESS"   # set by the runner: also draw progress on its terminal
SQL = (checks.SQL + preflight.SQL[len(checks.SQL):]
       + ("backfill/guard", "backfill/guard_trigger", "backfill/guard_state",
          "backfill/extent", "backfill/density", "backfill/analyze")
       + tuple(dict.fromkeys(statement for step in STEPS for statement in step[1:]))
       + quarantine.SQL + locks.SQL + runlock.WRITER_SQL)


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
        batch does not make the next overshoot), shrinking by up to half. A size that failed
        batches halved below min_batch_size grows back from there, a quarter at a time."""
        factor = min(1.25, max(0.5, self.target_batch_ms / max(ms, 1.0)))
        low = min(self.min_batch_size, size)
        return int(min(self.max_batch_size, max(low, size * factor)))


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
    return pd.DataFrame(totals), pd.DataFrame(batches, columns=BATCH_COLUMNS)


def backfill_table(conn: psycopg.Connection, table: str, policy: BatchPolicy, batches: list,
                   progress: bool) -> int:
    """Both passes over one table; the rows it updated."""
    pages_statement, keyset_statement = next(step[1:] for step in STEPS if step[0] == table)
    counts = db.one(conn, "common/null_count", table=table)
    todo = int(counts["nulls"])
    if not todo:
        return 0
    bars = _bars(table, todo) if progress else []
    try:
        done = _page_pass(conn, table, pages_statement, policy, batches, bars, todo, rows=int(counts["rows"]))
        if int(db.one(conn, "common/null_count", table=table)["nulls"]):
            # what is left is mostly rows the rule cannot place: fresh statistics let the
            # planner find them through the workspaceId index instead of walking the table
            db.execute(conn, "backfill/analyze", table=table)
            done += _keyset_pass(conn, table, keyset_statement, policy, batches, bars)
    finally:
        for bar in bars:
            bar.close()
    return done


def _page_pass(conn, table, statement, policy, batches, bars, todo, rows=0) -> int:
    """Heap pages [0, the table's size now) in physical order (see _Pages)."""
    end = int(db.one(conn, "backfill/extent", {"table": table})["pages"])
    full = db.one(conn, "backfill/density", {"percent": min(100.0, 100.0 * SAMPLE_PAGES / max(1, end))},
                  table=table)["tuples_per_page"]
    cursor = _Pages(end, max(todo, rows) / max(1, end), float(full or 0))
    return _pass(conn, table, statement, cursor, policy, batches, bars)


def _keyset_pass(conn, table, statement, policy, batches, bars) -> int:
    """By primary key, until no NULL row is left after the last position (see _Keys)."""
    return _pass(conn, table, statement, _Keys(), policy, batches, bars)


class _Pages:
    """Where the first pass is: heap pages [page, end) are left. A batch spans size / density
    pages, density being the most rows per page (NULL or not) known: the table's average, a
    full page's in a sample of pages, and every batch of this pass so far. So even where every
    row is NULL a batch holds about ``size`` rows, however few NULLs the pages before had
    (where the rows are done, batches are quick and the size grows toward max_batch_size)."""

    kind = "pages"

    def __init__(self, end: int, *densities: float):
        self.page, self.end = 0, end
        self.density = max(1.0, *densities)     # rows per page, never below one
        self.cap = MAX_BATCH_PAGES              # halved by each failed try, reset by a success

    def more(self) -> bool:
        return self.page < self.end

    def span(self, size: int) -> int:
        return max(1, min(self.cap, self.end - self.page, int(size / self.density)))

    def params(self, span: int) -> dict:
        return {"lo": f"({self.page},0)", "hi": f"({self.page + span},0)"}

    def where(self, span: int) -> str:
        return f"page {self.page}" if span == 1 else f"pages {self.page} to {self.page + span - 1}"

    def columns(self, size: int, span: int) -> dict:
        return {"size": size, "pages": span}

    def failed(self, span: int) -> None:
        self.cap = max(1, span // 2)

    def advance(self, span: int, result: dict) -> bool:
        """Past a batch that succeeded; True: record it."""
        self.page += span
        self.cap = MAX_BATCH_PAGES
        self.density = max(self.density, result["tuples"] / span)
        return True


class _Keys:
    """Where the second pass is: after primary key ``after``. A batch is the next ``size``
    rows still NULL (fewer after a failed try: half as many each time)."""

    kind = "keyset"

    def __init__(self):
        self.after, self.finished, self.cap = "", False, None

    def more(self) -> bool:
        return not self.finished

    def span(self, size: int) -> int:
        return max(1, min(size, self.cap or size))

    def params(self, span: int) -> dict:
        return {"after": self.after, "size": span}

    def where(self, span: int) -> str:
        return f"{span} row{'s' if span > 1 else ''} after id {self.after!r}"

    def columns(self, size: int, span: int) -> dict:
        return {"size": span, "pages": None}

    def failed(self, span: int) -> None:
        self.cap = max(1, span // 2)

    def advance(self, span: int, result: dict) -> bool:
        """Past a batch that succeeded; False when it found nothing: the pass is over."""
        self.cap = None
        if not result["scanned"]:
            self.finished = True
            return False
        self.after = result["last_id"]
        return True


def _pass(conn, table, statement, cursor, policy, batches, bars) -> int:
    """Batches until ``cursor`` is at its end; the rows updated. The size adapts toward
    target_batch_ms. A batch that fails is tried again with half its span (and the size
    halved with it) until it fits; only the smallest batch (one page, one row) failing
    _Retry.MAX times more gives up. Failed tries are recorded too (their ``error`` set)."""
    number = max((b["batch"] for b in batches if b["table"] == table), default=0)
    size, done, tries, smallest = policy.batch_size, 0, 0, 0
    while cursor.more():
        span = cursor.span(size)
        t0 = time.monotonic()
        try:
            result, ms = _batch(conn, table, statement, cursor.params(span), policy)
        except _Retry as retry:
            tries, smallest = tries + 1, smallest + (span == 1)
            _record(batches, table, cursor.kind, number + 1, tries, cursor.columns(size, span), None,
                    (time.monotonic() - t0) * 1000, bars, error=retry.args[0])
            retry.wait(smallest, tries, table, cursor.where(span))
            cursor.failed(span)
            size = max(1, size // 2)
            continue
        if cursor.advance(span, result):
            number += 1
            done += _record(batches, table, cursor.kind, number, tries + 1, cursor.columns(size, span),
                            result, ms, bars)
        tries = smallest = 0
        size = policy.next_size(size, ms)
        _pause(policy)
    return done


def _pause(policy: BatchPolicy) -> None:
    """Between batches, when asked (replica lag, I/O)."""
    if policy.pause_ms:
        time.sleep(policy.pause_ms / 1000)


class _Retry(Exception):
    """A batch hit its lock or statement timeout (or a deadlock): nothing of it was written.
    ``contention``: rows were locked (a lock timeout or deadlock), not a statement timeout."""

    MAX = 8     # failed tries of the smallest batch (one page, one row) before giving up

    def __init__(self, message: str, contention: bool):
        super().__init__(message.strip().splitlines()[0] if message.strip() else "cancelled")
        self.contention = contention

    def wait(self, smallest: int, tries: int, table: str, where: str) -> None:
        """Before the next, smaller try. A timed-out batch is retried at once (smaller is the
        remedy), one that met locked rows after a moment; at the smallest batch, with
        exponential backoff, and after MAX such tries, a clear message."""
        if smallest > self.MAX:
            raise GateFailed(f"backfill of {table}: a batch failed {tries} times, the last {smallest} "
                             f"at {where} alone, the smallest batch there is ({self.args[0]}). Nothing "
                             "of that batch was written; earlier batches are kept. Raise "
                             "batch_statement_timeout (a statement timeout) or lock_timeout, or end what "
                             "holds those rows' locks, then run the stage again.") from None
        if smallest:
            time.sleep(min(5.0, 0.1 * 2 ** smallest))
        elif self.contention:
            time.sleep(0.1)


def _batch(conn, table, statement, params, policy) -> tuple[dict, float]:
    """One batch in its own transaction: its result and how long it took, in ms."""
    t0 = time.monotonic()
    try:
        # This transaction's settings (db.settings: set_config(..., true), gone at its end): how
        # long it may wait for a row lock and run, and synchronous_commit off: the commit does not
        # wait for its WAL flush. Safe here: a crash can lose only the last batches' commits (at
        # most about 3 x wal_writer_delay), their rows are NULL again, and a re-run of the stage
        # (which touches only NULL rows) redoes them.
        with db.settings(conn, lock_timeout=policy.lock_timeout, statement_timeout=policy.statement_timeout,
                         synchronous_commit="off"), conn.transaction():
            result = db.one(conn, statement, params, table=table)
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable,
            psycopg.errors.DeadlockDetected) as exc:
        raise _Retry(str(exc).strip(), not isinstance(exc, psycopg.errors.QueryCanceled)) from None
    except psycopg.errors.UniqueViolation as exc:
        raise GateFailed(f"backfill of {table} stopped: {str(exc).strip()}. Two connections map "
                         "to the same (workspaceId, provider): a collision that arrived after "
                         "the check. Earlier batches are kept; run the stage again (with "
                         "-p on_collision quarantine to move the loser aside).") from None
    return result, (time.monotonic() - t0) * 1000


BATCH_COLUMNS = ["table", "pass", "batch", "try", "size", "pages", "tuples", "scanned", "updated",
                 "ms", "rows_per_s", "error"]


def _record(batches, table, kind, number, attempt, span, result, ms, bars, error=None) -> int:
    """One try of batch ``number`` of ``table`` (``result`` None: it failed with ``error``);
    the rows it updated. ``span``: its size in rows, and in pages (first pass); tuples (all
    rows on those pages) are the first pass's too."""
    result = result or {}
    scanned = result.get("scanned")
    batches.append({"table": table, "pass": kind, "batch": number, "try": attempt, **span,
                    "tuples": result.get("tuples"),
                    "scanned": scanned, "updated": result.get("updated"), "ms": round(ms, 1),
                    "rows_per_s": round(scanned / (ms / 1000)) if scanned is not None and ms else None,
                    "error": error})
    for bar in bars:
        bar.update(scanned or 0)
    return result.get("updated") or 0


def _bars(table: str, total: int) -> list:
    """A progress bar in the notebook, and one on the runner's terminal when it asks."""
    bars = [tqdm(total=total, desc=table, unit="row", file=sys.stdout, mininterval=1.0,
                 ascii=True, dynamic_ncols=False, ncols=90)]
    # the runner asks only when its own stderr is a terminal; ours is a pipe it forwards there
    if os.environ.get(PROGRESS_ENV) == "1" and sys.__stderr__ is not None:
        bars.append(tqdm(total=total, desc=f"  {table}", unit="row", file=sys.__stderr__,
                         mininterval=0.5, leave=False, position=0, ncols=100))
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
    """Per table: batches, failed tries retried smaller, rows scanned, and batch duration and
    throughput (mean, max) of the batches that succeeded."""
    columns = ["table", "batches", "retries", "rows", "ms_mean", "ms_max", "rows_per_s_mean"]
    if not len(batches):
        return pd.DataFrame(columns=columns)
    ok = batches[batches["error"].isna()]
    out = ok.groupby("table", sort=False).agg(
        batches=("batch", "count"), rows=("scanned", "sum"), ms_mean=("ms", "mean"),
        ms_max=("ms", "max"), rows_per_s_mean=("rows_per_s", "mean")).reset_index()
    retries = batches[batches["error"].notna()].groupby("table").size()
    out["retries"] = out["table"].map(retries).fillna(0).astype(int)
    return out.round(1)[columns]
