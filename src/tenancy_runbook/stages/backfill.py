"""20_backfill: every row of the spec's tables gets its tenant by the spec's rule, online.

  1. Collisions on the spec's tenant-scoped unique keys: ``on_collision='fail'`` stops before
     any write; ``'quarantine'`` keeps the winner of each colliding group (the spec's order) and
     moves the others, with every row below them, to the spec's quarantine schema.
  2. The transition guard: a trigger on each table places rows that application servers of
     the old version keep writing without a tenant (removed after the deploy by
     runbooks/finish.yaml, 60_remove_guard). Its functions are made from the spec
     (placement.py).
  3. Table by table in the spec's order (a parent before its children), batches that each are
     their own short transaction touching only rows still NULL: killed at any moment, nothing
     is lost and a re-run continues. The first pass walks the heap pages in physical order (TID
     ranges: the same I/O as one big UPDATE); a second pass, by primary key, takes what is still
     NULL after it. The batch size adapts toward a target duration; a first-pass batch spans no
     more pages than that many rows fill at the densest seen (done rows included), so a re-run
     over mostly done pages meets the NULL remainder with a batch of the usual size. A batch
     that fails (timeout, lock timeout, deadlock) is tried again with half its span, down to
     one page or one row.
  4. Rows the rule cannot place: ``on_orphan='fail'`` leaves them NULL (30_check_backfill then
     stops the runbook); ``'quarantine'`` moves them to the quarantine schema.
"""

from __future__ import annotations

import functools
import itertools
import sys
import threading
import time
from dataclasses import dataclass

import pandas as pd
import psycopg
from psycopg import sql
from tqdm import tqdm

from .. import batching, checks, control, db, health, interactive, locks, params, placement, quarantine, runlock, spec
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl
from ..params import CHOICES, check_values  # noqa: F401 (CHOICES: fail | quarantine, declared in params.py)
from . import preflight

READ_ONLY = False   # it writes (outside the runner only with confirm=True)
MAX_BATCH_PAGES = 4096   # 32 MB of heap: the longest span of a first-pass batch
SAMPLE_PAGES = 1000      # pages read at random for the rows a full page holds (sql/backfill/density.sql)
SQL = (checks.SQL + preflight.SQL[len(checks.SQL):]
       + placement.GUARD_SQL + ("backfill/guard_trigger", "backfill/guard_state",
          "backfill/extent", "backfill/density", "backfill/analyze", "backfill/key_bound",
          "backfill/guard_unplaced") + placement.PASS_SQL
       + quarantine.SQL + locks.SQL + runlock.WRITER_SQL + health.SQL + control.SQL + interactive.SQL)


@dataclass
class BatchPolicy:
    batch_size: int = 1000          # first batch
    min_batch_size: int = 100
    max_batch_size: int = 50000
    target_batch_ms: float = 120.0  # the size adapts so a batch takes about this long
    pause_ms: float = 0.0           # sleep between batches (replica lag, I/O)
    statement_timeout: str = "5s"   # one batch may not run longer
    lock_timeout: str = "500ms"     # one batch may not wait longer for a row lock
    workers: int = 1                # connections backfilling one table at once
    limits: object = None           # health.Limits: wait while the database is over them (None: never)

    def check(self) -> "BatchPolicy":
        """Each value as params.py allows it (a RunbookError naming the bad ones)."""
        check_values({"batch_size": self.batch_size, "min_batch_size": self.min_batch_size,
                      "max_batch_size": self.max_batch_size, "target_batch_ms": self.target_batch_ms,
                      "batch_pause_ms": self.pause_ms, "batch_statement_timeout": self.statement_timeout,
                      "lock_timeout": self.lock_timeout, "backfill_workers": self.workers})
        return self

    def next_size(self, size: int, ms: float) -> int:
        """Toward the target duration: growing by at most a quarter per batch (so one fast
        batch does not make the next overshoot), shrinking by up to half. A size that failed
        batches halved below min_batch_size grows back from there, a quarter at a time."""
        factor = min(1.25, max(0.5, self.target_batch_ms / max(ms, 1.0)))
        low = min(self.min_batch_size, size)
        return int(min(self.max_batch_size, max(low, size * factor)))


class Aborted(Exception):
    """``tenancy-runbook control abort``: the backfill stops after the batches running."""

    def __init__(self, command: dict):
        super().__init__("aborted")
        self.command = command

    def message(self, batches: list) -> str:
        c = self.command
        done = sum(b["updated"] or 0 for b in batches)
        return (f"Backfill aborted by `tenancy-runbook control abort` from {c.get('by_user')}@{c.get('by_host')} "
                f"at {c.get('at')}, after the batches that were running: {done} rows placed in this run are "
                "kept, nothing is half-done. Run the stage again (or the same runbook command) to resume "
                "where it stopped.")


class Steer:
    """Between batches, for every worker: the operator's commands (control.Live: pause, resume,
    abort, set), the database's health (health.Throttle: replica lag, autovacuum) and progress
    for `tenancy-runbook status`. The database is asked at most once every EVERY_S, on ``conn``
    (a worker's own connection when there is one worker, else one no worker uses), one worker
    at a time: while it is paused or waits for health, every worker waits."""

    EVERY_S = 1.0
    RATE_WINDOW_S = 10.0

    def __init__(self, conn: psycopg.Connection, policy: BatchPolicy, run_id: str | None = None):
        self.conn, self.policy = conn, policy
        self.throttle = None
        if policy.limits is not None:
            self.throttle = health.Throttle(policy.limits)
        self.live = None
        if run_id is not None:
            control.ensure(conn)
            self.live = control.Live(conn, run_id)
        self.applied: list[dict] = []
        self.paused = False
        self.aborted: dict | None = None
        self.tables: dict[str, dict] = {}
        self.state = "running"
        self._last = 0.0
        self._lock = threading.RLock()

    # -- progress
    def started(self, table: str, total: int) -> None:
        with self._lock:
            self.tables[table] = {"total": total, "done": 0, "size": self.policy.batch_size,
                                  "window": [(time.monotonic(), 0)]}
            self._report(table, "running")

    def batch(self, table: str, rows: int, size: int) -> None:
        with self._lock:
            t = self.tables.setdefault(table, {"total": 0, "done": 0, "size": size, "window": [(time.monotonic(), 0)]})
            t["done"] += rows
            t["size"] = size
            now = time.monotonic()
            t["window"].append((now, t["done"]))
            while len(t["window"]) > 2 and now - t["window"][1][0] > self.RATE_WINDOW_S:
                t["window"].pop(0)

    def finished(self, table: str) -> None:
        with self._lock:
            if table in self.tables:
                self.tables[table]["done"] = max(self.tables[table]["done"], self.tables[table]["total"])
                self._report(table, "done")

    def ended(self, state: str) -> None:
        """The stage's end: every table's last state (done, aborted, failed) for `status`."""
        if state == "done":
            return                  # each table said so when it finished
        with self._lock:
            for table in self.tables:
                self._report(table, state)

    def rate(self, table: str) -> float:
        window = self.tables.get(table, {}).get("window") or []
        if len(window) < 2 or window[-1][0] <= window[0][0]:
            return 0.0
        return (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])

    def _report(self, table: str, state: str) -> None:
        self.state = state
        if self.live is None or table not in self.tables:
            return
        t = self.tables[table]
        self._quietly(lambda: self.live.report(
            table, rows_total=t["total"], rows_done=t["done"], rows_per_s=round(self.rate(table), 1),
            batch_size=t["size"], workers=self.policy.workers, state=state))

    # -- between batches
    def between(self, table: str) -> None:
        """From any worker after its batch: raises Aborted once an abort came; otherwise at most
        every EVERY_S reads the commands and the health, and waits while paused or unhealthy.
        While the replica lag is near its limit (health.Throttle.due), the health is read after
        every batch."""
        self._check_abort()
        if time.monotonic() - self._last < self.EVERY_S:
            if self.throttle is not None and self.throttle.near:
                with self._lock:
                    if self._throttle(table):
                        self._report(table, "running")
            return
        with self._lock:
            if time.monotonic() - self._last < self.EVERY_S:
                return self._check_abort()
            self._commands()
            while self.paused and not self.aborted:
                self._report(table, "paused")
                time.sleep(self.EVERY_S)
                self._commands()
            self._check_abort()
            self._throttle(table)
            self._report(table, "running")
            self._last = time.monotonic()

    def _throttle(self, table: str) -> float:
        """health.Throttle.wait (when health is watched), its episodes into the events; the
        seconds waited."""
        if self.throttle is None:
            return 0.0
        before = len(self.throttle.episodes)
        waited = self.throttle.wait(self.conn, table, on_poll=self._poll_while_waiting,
                                    on_state=lambda state: self._report(table, state))
        for episode in self.throttle.episodes[before:]:
            self._event("throttle", table, episode, episode.get("seconds"))
        return waited

    def _check_abort(self) -> None:
        if self.aborted:
            raise Aborted(self.aborted)

    def _poll_while_waiting(self) -> None:
        self._commands()
        self._check_abort()

    def _commands(self) -> None:
        if self.live is None:
            return
        for command in self.live.poll():
            outcome = self._apply(command)
            self.applied.append({**command, "outcome": outcome})   # the notebook shows these
            self._quietly(self.live.applied, command, outcome)

    def _apply(self, command: dict) -> str:
        action = command.get("action")
        if action == "pause":
            self.paused = True
            return "paused after the batches running"
        if action == "resume":
            was, self.paused = self.paused, False
            return "resumed" if was else "was not paused"
        if action == "abort":
            self.aborted = command
            return "aborting after the batches running"
        if action == "set":
            return self._set(command.get("name"), command.get("value"))
        return f"ignored: unknown action {action!r}"

    def _set(self, name: str, text) -> str:
        value = params.parse(name, text)
        problem = params.get(name).problem(value) if name in control.SETTABLE else f"{name} cannot be set"
        if problem:
            return f"refused: {problem}"
        p = self.policy
        if name == "max_replica_lag":
            if self.throttle is None:
                return "refused: this backfill does not watch replica lag"
            old = self.throttle.limits.max_replica_lag
            self.throttle.limits.max_replica_lag = params.size_bytes(value)
            return f"max_replica_lag {old} -> {self.throttle.limits.max_replica_lag} bytes"
        attr = {"batch_pause_ms": "pause_ms", "target_batch_ms": "target_batch_ms",
                "max_batch_size": "max_batch_size"}[name]
        old = getattr(p, attr)
        setattr(p, attr, type(old)(value))
        if name == "max_batch_size":
            p.min_batch_size = min(p.min_batch_size, p.max_batch_size)
        return f"{name} {old} -> {getattr(p, attr)}"

    def _event(self, kind: str, table, detail: dict, seconds=None) -> None:
        if self.live is not None:
            self._quietly(self.live.event, kind, table, detail, seconds)

    @staticmethod
    def _quietly(write, *args) -> None:
        """A record for watching (progress, events): failing to write one must not stop the backfill."""
        try:
            write(*args)
        except psycopg.Error:
            pass

    # -- evidence
    def actions(self) -> pd.DataFrame:
        """Every command this backfill applied: when sent, what, by whom, what came of it."""
        columns = ["at", "action", "name", "value", "by_user", "by_host", "outcome"]
        return pd.DataFrame([{k: a.get(k) for k in columns} for a in self.applied], columns=columns)

    def facts(self) -> dict:
        """For the stage's line and the manifest (nb.summary): throttling and control actions."""
        out = {"backfill_workers": self.policy.workers} if self.policy.workers > 1 else {}
        throttle = self.throttle.summary() if self.throttle is not None else {}
        if throttle.get("episodes"):
            out.update(throttled_s=throttle["seconds"], throttled_by_signal_s=throttle["by_signal"])
        if throttle.get("replica_lag_max_bytes") is not None:
            out["replica_lag_max_bytes"] = throttle["replica_lag_max_bytes"]
        if self.applied:
            out["control"] = [" ".join(str(a.get(k)) for k in ("action", "name", "value") if a.get(k) is not None)
                              + f" by {a.get('by_user')}@{a.get('by_host')}" for a in self.applied]
        return out


def quarantined(conn: psycopg.Connection, run_id: str) -> dict:
    """Rows this run moved to the quarantine, per table (collisions' losers and their rows,
    rows the rule cannot place)."""
    found = quarantine.summary(conn)
    found = found[found["run_id"] == run_id]
    return {t: int(n) for t, n in found.groupby("table", sort=False)["rows"].sum().items()}


def check_choice(name: str, value: str) -> str:
    """``value`` of on_collision or on_orphan, if params.py allows it."""
    return check_values({name: value})[name]


def handle_collisions(conn: psycopg.Connection, on_collision: str, run_id: str) -> pd.DataFrame:
    """Before any write: fail on a projected collision, or quarantine the losing connections."""
    found = preflight.collisions(conn)
    if len(found) and check_choice("on_collision", on_collision) == "fail":
        raise GateFailed(collision_refusal(found))
    return quarantine.collisions(conn, found, run_id)


def collision_refusal(found: pd.DataFrame) -> str:
    """Why the backfill refuses the projected collisions ``found`` with on_collision='fail'."""
    return ("Backfill refused, nothing was written: " + preflight.problems(found, found.iloc[0:0])[0]
            + " Or run with -p on_collision quarantine to keep the first row of each colliding "
              "group (by the tenancy spec's winner order) and quarantine the others.")


def install_guard(conn: psycopg.Connection, policy: RetryPolicy, log: DDLLog) -> pd.DataFrame:
    """The transition guard on every table of the spec (idempotent): its functions, made from the
    spec (placement.rule_function, placement.place_function), then a trigger per table."""
    s = spec.active()
    with conn.transaction(), conn.cursor() as cur:
        db.execute(conn, "backfill/guard")
        cur.execute(placement.rule_function(s))
        cur.execute(placement.place_function(s))
    for table in s.table_names:
        run_ddl(conn, f"install guard on {table}", [table],
                lambda t=table: db.execute(conn, "backfill/guard_trigger", table=t, tenant=s.tenant.name),
                policy, log)
    return guard_state(conn)


def guard_state(conn: psycopg.Connection) -> pd.DataFrame:
    return db.frame(conn, "backfill/guard_state", {"tables": list(spec.active().table_names)})


def run(conn: psycopg.Connection, policy: BatchPolicy, progress: bool = True,
        steer: "Steer | None" = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Batch every table; (rows updated per table, one row per batch try). ``steer``: the run's
    link to database health and the operator's commands (Steer); without one, neither."""
    checks.require_columns(conn, "20_backfill")
    policy.check()
    if not guard_state(conn)["guarded"].all():
        raise GateFailed("The transition guard is not installed on every table: run "
                         "backfill.install_guard() first (the notebook does).")
    steer = steer or Steer(conn, policy)
    batches, totals = [], []
    try:
        for table in spec.active().table_names:
            started = time.monotonic()
            done = backfill_table(conn, table, policy, batches, progress, steer)
            totals.append({"table": table, "rows_updated": done,
                           "seconds": round(time.monotonic() - started, 3)})
    except Aborted as aborted:
        steer.ended("aborted")
        raise GateFailed(aborted.message(batches)) from None
    except BaseException:
        steer.ended("failed")
        raise
    steer.ended("done")
    return pd.DataFrame(totals), pd.DataFrame(batches, columns=BATCH_COLUMNS)


def backfill_table(conn: psycopg.Connection, table: str, policy: BatchPolicy, batches: list,
                   progress: bool, steer: "Steer | None" = None) -> int:
    """Both passes over one table; the rows it updated."""
    steer = steer or Steer(conn, policy)
    s = spec.active()
    step = placement.step(s, s.table(table))
    counts = checks.null_count(conn, table)
    todo = int(counts["nulls"])
    if not todo:
        return 0
    steer.started(table, todo)
    bars = _bars(table, todo) if progress else []
    try:
        unplaced = _guard_unplaced(conn, table)
        first = len(batches)
        numbers = itertools.count(1)     # the table's batch numbers, through both passes
        done = _page_pass(conn, table, step.pages, policy, batches, bars, todo,
                          rows=int(counts["rows"]), steer=steer, numbers=numbers)
        if _left_after_pages(batches[first:], table) or _guard_unplaced(conn, table) > unplaced:
            # what is left is mostly rows the rule cannot place: fresh statistics let the
            # planner find them through the tenant column's index instead of walking the table
            db.execute(conn, "backfill/analyze", table=table)
            done += _keyset_pass(conn, table, step.keyset, policy, batches, bars, steer=steer,
                                 numbers=numbers)
    finally:
        for bar in bars:
            bar.close()
    steer.finished(table)
    return done


def _guard_unplaced(conn, table: str) -> int:
    return int(db.one(conn, "backfill/guard_unplaced", {"table": table})["unplaced"])


def _left_after_pages(tries: list, table: str) -> bool:
    """Whether the first pass may have left a NULL row on the pages it walked, from its own
    counts instead of a second full-table count (which cost as much as a quarter of the pass's
    WAL: it is the first read of every new row version, and with data checksums its hint bits
    write each page again). Each page was covered by exactly one committed batch, which saw
    ``scanned`` NULL rows there and placed ``updated`` of them; fewer placed means some are
    left (unplaceable, or changed meanwhile). Rows written after a page's batch, or past the
    pages the pass walked, went through the guard, which counts what it cannot place
    (_guard_unplaced, compared by the caller). A row written with the guard bypassed
    (session_replication_role = replica) is what 30_check_backfill's count and 40's sweep
    still catch."""
    return any(b["table"] == table and b["pass"] == "pages" and not b["error"]
               and (b["scanned"] or 0) > (b["updated"] or 0) for b in tries)


def _page_pass(conn, table, statement, policy, batches, bars, todo, rows=0, steer=None, numbers=None) -> int:
    """Heap pages [0, the table's size now) in physical order (see batching.Pages), on
    policy.workers connections at once. ``numbers``: the table's batch numbers (from 1 unless
    given)."""
    end = int(db.one(conn, "backfill/extent", {"table": table})["pages"])
    full = db.one(conn, "backfill/density", {"percent": min(100.0, 100.0 * SAMPLE_PAGES / max(1, end))},
                  table=table)["tuples_per_page"]
    cursor = batching.Pages(end, numbers or itertools.count(1), max(todo, rows) / max(1, end), float(full or 0),
                            max_span=MAX_BATCH_PAGES)
    return _workers(conn, _Pass(table, statement, cursor, policy, batches, bars, steer or Steer(conn, policy)))


def _keyset_pass(conn, table, statement, policy, batches, bars, steer=None, numbers=None) -> int:
    """By primary key, until no NULL row is left after the last position (see batching.Keys);
    on several workers, each batch within a range of keys of its own (batching.KeyRanges).
    ``numbers``: as _page_pass's."""
    numbers = numbers or itertools.count(1)
    cursor = (batching.Keys(numbers) if policy.workers <= 1
              else batching.KeyRanges(numbers, functools.partial(_key_bound, table)))
    return _workers(conn, _Pass(table, statement, cursor, policy, batches, bars, steer or Steer(conn, policy)))


def _key_bound(table: str, conn, after, size: int):
    """The key of the ``size``-th row of ``table`` still NULL after key ``after``, None when
    fewer are left (sql/backfill/key_bound.sql)."""
    s = spec.active()
    found = db.rows(conn, "backfill/key_bound", {"after": after, "size": size}, table=table,
                    key=s.table(table).key, tenant=s.tenant.name)
    return found[0]["upto"] if found else None


@dataclass
class _Pass:
    """One pass over one table: what the loops of its workers (_loop) share."""
    table: str
    statement: sql.Composable   # the batch statement (placement.Step's pages or keyset)
    cursor: batching.Cursor  # where the next batch is: pages, or keys
    policy: BatchPolicy
    batches: list            # every try's record (BATCH_COLUMNS), from every worker
    bars: list
    steer: Steer

    def record(self, ticket: batching.Ticket, size: int, worker: int, result: dict | None, ms: float,
               error: str | None = None) -> int:
        """One try of ``ticket``'s batch (``result`` None: it failed with ``error``, a try the
        cursor already counted); the rows it updated. Its size in rows, and in pages (first
        pass); tuples (all rows on those pages) are the first pass's too."""
        attempt = ticket.tries if result is None else ticket.tries + 1
        result = result or {}
        scanned = result.get("scanned")
        self.batches.append({"table": self.table, "pass": self.cursor.kind, "batch": ticket.number,
                             "try": attempt, **self.cursor.columns(size, ticket), "worker": worker,
                             "tuples": result.get("tuples"), "scanned": scanned, "updated": result.get("updated"),
                             "ms": round(ms, 1),
                             "rows_per_s": round(scanned / (ms / 1000)) if scanned is not None and ms else None,
                             "error": error})
        for bar in self.bars:
            bar.update(scanned or 0)
        return result.get("updated") or 0


def _workers(conn, job: _Pass) -> int:
    """policy.workers loops (_loop) taking batches from the pass's cursor: one on ``conn``
    itself, or each on a connection of its own (``conn`` then only serves the steer). The
    first error stops them all (no new batch starts) and is raised once they have ended; what
    they committed stays. The rows they updated."""
    workers = job.policy.workers
    if workers <= 1:
        return _loop(conn, job)
    conns = [db.sibling(conn) for _ in range(workers)]
    done, errors = [0] * workers, []

    def work(i: int) -> None:
        try:
            done[i] = _loop(conns[i], job, worker=i + 1)
        except BaseException as exc:   # noqa: BLE001 - handed to the caller's thread below (_loop stopped the cursor)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), name=f"backfill {job.table} {i + 1}", daemon=True)
               for i in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except BaseException:              # KeyboardInterrupt: no new batch; cancel the running ones
        job.cursor.stop()
        for c in conns:
            c.cancel_safe()
        for thread in threads:
            thread.join(5)
        raise
    finally:
        for c in conns:
            c.close()
    if errors:
        raise next((e for e in errors if isinstance(e, (Aborted, GateFailed))), errors[0])
    return sum(done)


def _loop(conn, job: _Pass, worker: int = 1) -> int:
    """The one batch loop, for either kind of cursor: one worker's batches until the cursor
    has none left; the rows updated. The size adapts toward target_batch_ms (time spent
    waiting for health or a pause is not a batch's time). A batch that fails is tried again
    with half its span (and the size halved with it) until it fits; only the smallest batch
    (one page, one row) failing _Retry.MAX times more gives up. Failed tries are recorded too
    (their ``error`` set). Between batches, the steer (health, the operator's commands,
    progress) and policy.pause_ms."""
    cursor, policy, table = job.cursor, job.policy, job.table
    size, done = policy.batch_size, 0
    try:
        while (ticket := cursor.claim(size, conn)) is not None:
            t0 = time.monotonic()
            try:
                result, ms = _batch(conn, table, job.statement, cursor.params(ticket), policy)
            except _Retry as retry:
                cursor.failed(ticket)
                job.record(ticket, size, worker, None, (time.monotonic() - t0) * 1000, error=retry.args[0])
                retry.wait(ticket.smallest, ticket.tries, table, cursor.where(ticket))
                size = max(1, size // 2)
                continue
            if cursor.succeeded(ticket, result):
                done += job.record(ticket, size, worker, result, ms)
                job.steer.batch(table, result.get("scanned") or 0, size)
            size = min(policy.max_batch_size, policy.next_size(size, ms))
            job.steer.between(table)
            _pause(policy)
    except BaseException:
        cursor.stop()
        raise
    return done


def _pause(policy: BatchPolicy) -> None:
    """Between batches, when asked (batch_pause_ms; the operator may change it meanwhile)."""
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
        # No pipeline mode: it saved no time here (1.15 ms per empty batch without it, 1.25-1.45
        # ms with it, PostgreSQL 15 on localhost), and a batch cancelled inside a pipeline could
        # leave results psycopg no longer expected ('pop from an empty deque' on the next batch).
        with db.settings(conn, lock_timeout=policy.lock_timeout, statement_timeout=policy.statement_timeout,
                         synchronous_commit="off"), conn.transaction(), conn.cursor() as cur:
            cur.execute(statement, params)
            result = cur.fetchone()
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable,
            psycopg.errors.DeadlockDetected) as exc:
        raise _Retry(str(exc).strip(), not isinstance(exc, psycopg.errors.QueryCanceled)) from None
    except psycopg.errors.UniqueViolation as exc:
        keys = " or ".join(f"({', '.join(k.columns)})" for k in spec.active().unique_keys if k.table == table)
        raise GateFailed(f"backfill of {table} stopped: {str(exc).strip()}. Two rows of {table} map "
                         f"to the same {keys or 'unique key'}: a collision that arrived after the "
                         "check. Earlier batches are kept; run the stage again (with -p on_collision "
                         "quarantine to move the loser aside).") from None
    return result, (time.monotonic() - t0) * 1000


BATCH_COLUMNS = ["table", "pass", "batch", "worker", "try", "size", "pages", "tuples", "scanned", "updated",
                 "ms", "rows_per_s", "error"]


def _bars(table: str, total: int) -> list:
    """A progress bar in the notebook, and one on the runner's terminal when it asks."""
    bars = [tqdm(total=total, desc=table, unit="row", file=sys.stdout, mininterval=1.0,
                 ascii=True, dynamic_ncols=False, ncols=90)]
    from .. import nb     # (matplotlib: only where a bar is drawn)
    terminal = nb.terminal()     # the runner's terminal, when it has one (paths.PROGRESS_ENV)
    if terminal is not None:
        bars.append(tqdm(total=total, desc=f"  {table}", unit="row", file=terminal,
                         mininterval=0.5, leave=False, position=0, ncols=100))
    return bars


def handle_unplaced(conn: psycopg.Connection, on_orphan: str, run_id: str) -> pd.DataFrame:
    """After the batches: quarantine what the rule could not place, or leave it for the gate."""
    if check_choice("on_orphan", on_orphan) == "quarantine":
        return quarantine.unplaced(conn, run_id)
    tables = list(spec.active().table_names)
    return pd.DataFrame({"table": tables, "rows_moved": [0] * len(tables)})


def leftover(conn: psycopg.Connection) -> pd.DataFrame:
    """NULLs left per table, split into rows the rule cannot place and rows it could have."""
    nulls = checks.null_counts(conn)
    # who cannot be placed is asked only when something is left (a join over every table)
    unplaced = preflight.unplaceable_users(conn) if nulls["nulls"].sum() else pd.DataFrame()
    per_table = preflight.unplaceable_rows(unplaced)
    nulls["unplaceable"] = [per_table[t] for t in nulls["table"]]
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


def plan(conn: psycopg.Connection, on_collision: str, on_orphan: str) -> interactive.Plan:
    """What this stage would do now, changing nothing (a dry run): the colliding rows it
    would quarantine (or the collisions it would refuse on), the guard it would install, the rows
    still NULL per table it would backfill, and what becomes of the rows the rule cannot place.
    Row counts are as of now (the rows below a quarantined collision loser are not backfilled)."""
    stage = "20_backfill"
    try:
        checks.require_columns(conn, stage)
    except GateFailed as exc:
        return interactive.plan(stage, [], refusal=str(exc))
    s, steps, refusal = spec.active(), [], ""
    found = preflight.collisions(conn)
    if len(found) and check_choice("on_collision", on_collision) == "fail":
        refusal = collision_refusal(found)
    elif len(found):
        for key in s.unique_keys:
            groups = found[found["table"] == key.table]
            if not len(groups):
                continue
            below = [table for table, _ in quarantine.below(s, key.table)]
            steps.append({"step": f"quarantine the colliding rows of {len(groups)} ({', '.join(key.columns)}) "
                                  "group(s), keeping the first of each by "
                                  + ", ".join(f"{w.column} {w.order}" for w in key.winner)
                                  + (f", with their rows in {', '.join(below)}" if below else ""),
                          "table": key.table, "rows": int(groups["rows"].sum()) - len(groups),
                          "sql": "sql/quarantine/move_under.sql, sql/quarantine/move_by_id.sql"})
    guarded = guard_state(conn).set_index("table")["guarded"]
    steps.append({"step": "create (or replace) the transition guard's functions and counts",
                  "sql": "sql/backfill/guard.sql, " + ("sql/backfill/guard_rule_set.sql" if s.user_rule.kind == "sql"
                                                       else "sql/backfill/guard_rule.sql")
                         + ", sql/backfill/guard_place.sql"})
    steps += [{"step": ("re-install the transition guard (it is on: replaced, its counts kept)" if guarded[t]
                        else "install the transition guard"), "table": t,
               "sql": interactive.statement("backfill/guard_trigger", table=t, tenant=s.tenant.name)}
              for t in s.table_names]
    left = leftover(conn).set_index("table")
    for step in placement.steps(s):
        placeable = int(left.loc[step.table, "nulls"] - left.loc[step.table, "unplaceable"])
        if placeable > 0:
            pages, keyset = step.files
            steps.append({"step": f"backfill {s.tenant.name} by the rule, in batches", "table": step.table,
                          "rows": placeable, "sql": f"sql/{pages}.sql, then sql/{keyset}.sql"})
    quarantines = check_choice("on_orphan", on_orphan) == "quarantine"
    for table in quarantine.QUARANTINE_ORDER:
        rows = int(left.loc[table, "unplaceable"])
        if rows and quarantines:
            steps.append({"step": "quarantine the rows the rule cannot place", "table": table, "rows": rows,
                          "sql": "sql/quarantine/move_unplaced.sql"})
        elif rows:
            steps.append({"step": "leave NULL the rows the rule cannot place (on_orphan is fail: "
                                  "30_check_backfill then stops the runbook)", "table": table, "rows": rows})
    return interactive.plan(stage, [] if refusal else steps, refusal=refusal)
