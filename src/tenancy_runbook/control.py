"""See and steer a running backfill from outside its kernel.

The backfill (stages/backfill.py) reports its progress to the database about once a second
(:class:`Live`), takes the commands an operator left for it between batches, and records each
command it applied and each wait for the database's health. ``tenancy-runbook status`` and
``tenancy-runbook control`` read and write the same tables (schema ``tenancy_runbook``,
sql/control/ensure.sql), so they work from any terminal or pipeline step with DATABASE_URL.

A command is for the run that holds the runbook's lock (runlock.py) when it is sent, and for
that lock session only: sent while no run is active it is refused (exit 1), and a run that
ends before taking one leaves it to no one (the runner's manifest says it was not applied).
The run id a command names is the one in the lock holder's label, which is the run id the
run's notebooks are given (the runner's, or runlock.adhoc_run_id() for a notebook run alone).
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from . import archive, db, health, params, runlock
from .errors import RunbookError

ACTIONS = ("pause", "resume", "abort", "set")
SETTABLE = ("batch_pause_ms", "target_batch_ms", "max_batch_size", "max_replica_lag")
STATES = ("running", "paused", "waiting for replica", "waiting for autovacuum", "done", "aborted", "failed")
ENSURE_KEY = {"classid": runlock.KEY["classid"], "objid": 0x6374726C}   # "ctrl": not the run lock's key
RECENT_RUNS = 20            # status looks at the progress of the runs that reported last
STALE_S = 10.0              # a running table not reported for this long is shown as such
STATEMENT_TIMEOUT = "10s"   # status and control run small statements
SQL = tuple(f"control/{name}" for name in (
    "ensure_lock", "ensure", "present", "report", "send", "poll", "pending", "event", "events",
    "commands", "progress")) + ("runlock/holder", "common/runbook_schema")
EFFECT = {
    "pause": "The backfill pauses between batches (no transaction held open) until "
             "`tenancy-runbook control resume`, or `abort`.",
    "resume": "The backfill resumes between batches.",
    "abort": "The backfill stops after its current batch: the stage ends with a gate failure (exit 1); "
             "everything done so far is kept, and running the stage again resumes.",
    "set": "The backfill applies it between batches, for the rest of this run.",
}


class NoRun(RunbookError):
    """No run holds the database: a command is refused (exit 1), nothing is written."""

    exit_code = 1


# --------------------------------------------------------------------------- the tables
def ensure(conn: psycopg.Connection) -> None:
    """The progress, commands and events tables in schema tenancy_runbook (created if absent;
    the schema too, unless an administrator created it). Needs a read-write connection."""
    try:
        with conn.transaction():
            db.execute(conn, "control/ensure_lock", ENSURE_KEY)
            db.execute(conn, "control/ensure")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RunbookError(
            f"cannot create the runbook's control tables in schema tenancy_runbook: {str(exc).strip()}. "
            f"Grant the role CREATE on the database (or create schema tenancy_runbook and GRANT USAGE, "
            f"CREATE ON SCHEMA tenancy_runbook TO {conn.info.user}), then run again.") from None


def present(conn: psycopg.Connection) -> bool:
    """Do the control tables exist (has a backfill run on this database)?"""
    return bool(db.one(conn, "control/present")["present"])


# --------------------------------------------------------------------------- commands
def check_command(action: str, name: str | None = None, value: str | None = None) -> tuple[str | None, str | None]:
    """(name, value as typed) of a command, or a RunbookError naming what is allowed."""
    if action not in ACTIONS:
        raise RunbookError(f"unknown control action {action!r}: allowed: {' | '.join(ACTIONS)}")
    if action != "set":
        if name is not None or value is not None:
            raise RunbookError(f"{action} takes no NAME VALUE (only set does)")
        return None, None
    if name not in SETTABLE:
        raise RunbookError(f"{name!r} cannot be set on a running backfill: allowed: {', '.join(SETTABLE)} "
                           "(any other parameter: stop the run and start it again with -p NAME VALUE). "
                           "Nothing was sent.")
    text = "" if value is None else str(value).strip()
    problem = params.get(name).problem(typed(name, text))
    if problem:
        raise RunbookError(f"{problem}. Nothing was sent.")
    return name, text


def typed(name: str | None, text: str | None):
    """A set command's value as the parameter's type (params.parse, then normalize)."""
    if name is None or text is None:
        return text
    return params.normalize(name, params.parse(name, text))


@dataclass
class Sent:
    id: int
    at: datetime
    run_id: str
    action: str
    name: str | None
    value: str | None
    by_user: str
    by_host: str
    holder: runlock.Holder
    reporting: bool          # the run's backfill has reported progress (it may not have started)


def send(conn: psycopg.Connection, action: str, name: str | None = None, value: str | None = None,
         host: str | None = None) -> Sent:
    """Leave a command for the run holding the runbook's lock (``conn`` read-write).

    Refused (NoRun, exit 1) when no run is active, writing nothing; a bad action, name or
    value is a RunbookError (exit 2) naming what is allowed.
    """
    name, text = check_command(action, name, value)
    found = runlock.holder(conn)
    where = _where(conn)
    if found is None:
        raise NoRun(f"no run is active on {where}: nothing was sent. A command is for a running run only "
                    "(so that no later run obeys it): start the run, then send it again. "
                    "`tenancy-runbook status` shows what ran last.")
    if found.parsed is None:
        raise NoRun(f"the runbook's lock on {where} is held by {found.describe()}, not by a run of the "
                    "runbook: nothing was sent.")
    ensure(conn)
    rows = db.rows(conn, "control/send", {
        **runlock.KEY, "run_id": found.parsed[0], "lock_pid": found.backend_pid, "lock_since": found.since,
        "action": action, "name": name, "value": text, "host": host or runlock.host()})
    if not rows:
        raise NoRun(f"{found.describe()} ended just now: nothing was sent.")
    row = rows[0]
    reporting = any(_of_holder(found, r) for r in db.rows(conn, "control/progress", {"runs": RECENT_RUNS}))
    return Sent(row["id"], row["at"], row["run_id"], action, name, text, row["by_user"], row["by_host"],
                found, reporting)


def sent_lines(sent: Sent) -> list[str]:
    """What ``tenancy-runbook control`` prints."""
    what = sent.action + (f" {sent.name} {sent.value}" if sent.action == "set" else "")
    parsed = sent.holder.parsed
    lines = [f"sent: {what}",
             f"  to run {sent.run_id} (pid {parsed[1]} on host {parsed[2]})",
             f"  by {sent.by_user} from {sent.by_host} at {_utc(sent.at)} (command {sent.id})",
             EFFECT[sent.action]]
    if not sent.reporting:
        lines.append("The run's backfill has not started yet: it applies the command when it does "
                     "(if the run gets there).")
    lines.append("`tenancy-runbook status` shows the backfill's state.")
    return lines


# --------------------------------------------------------------------------- the running backfill
class Live:
    """The running backfill's side: its progress, the commands for it, its evidence.

    ``conn``: a read-write connection of its own (a statement here never waits on a batch).
    Commands are those sent to the lock session of run ``run_id`` (the runner's, or this
    kernel's own notebook lock). Safe to call from several threads (one statement at a time).
    """

    def __init__(self, conn: psycopg.Connection, run_id: str):
        self.conn, self.run_id = conn, run_id
        self.host, self.pid = runlock.host(), os.getpid()
        self._mutex = threading.Lock()
        self._session: tuple[int, datetime] | None = None
        self._find_session()

    def _find_session(self) -> None:
        found = runlock.own(self.conn, self.run_id)
        self._session = (found.backend_pid, found.since) if found else None

    def report(self, table: str, *, rows_total: int | None, rows_done: int | None, rows_per_s: float | None,
               batch_size: int | None, workers: int | None, state: str) -> None:
        """This run's progress on ``table`` (one row per run and table, rewritten)."""
        if state not in STATES:
            raise ValueError(f"state {state!r}: one of {', '.join(STATES)}")
        values = {"run_id": self.run_id, "table": table, "host": self.host, "pid": self.pid,
                  "rows_total": _int(rows_total), "rows_done": _int(rows_done),
                  "rows_per_s": _float(rows_per_s), "batch_size": _int(batch_size), "workers": _int(workers),
                  "state": state}
        with self._mutex:
            db.execute(self.conn, "control/report", values)

    def poll(self) -> list[dict]:
        """Commands for this run not taken yet, oldest first, now marked taken: each
        {id, action, name, value (set: as the parameter's type, e.g. 250.0, "256MB"), text (as
        typed), at (ISO, UTC), by_user, by_host}."""
        with self._mutex:
            if self._session is None:
                self._find_session()
            if self._session is None:
                return []
            rows = db.rows(self.conn, "control/poll", {"lock_pid": self._session[0], "lock_since": self._session[1]})
        return [{"id": r["id"], "action": r["action"], "name": r["name"], "value": typed(r["name"], r["value"]),
                 "text": r["value"], "at": _iso(r["at"]), "by_user": r["by_user"], "by_host": r["by_host"]}
                for r in sorted(rows, key=lambda r: r["id"])]

    def event(self, kind: str, table: str | None, detail: dict, seconds: float | None = None) -> None:
        """Record something the run did: ``kind`` "control" (a command applied: detail {id, action,
        name, value, by_user, by_host, at, outcome}; see applied()) or "throttle" (a wait for the
        database's health: detail an episode {signal, value, limit, started_at, seconds})."""
        with self._mutex:
            db.execute(self.conn, "control/event", {
                "run_id": self.run_id, "kind": kind, "table": table,
                "detail": Jsonb(detail, dumps=_dumps), "seconds": _float(seconds)})

    def applied(self, command: dict, outcome: str, table: str | None = None) -> None:
        """Record a command from poll() and what came of it ("paused", "max_batch_size 20000 -> 500",
        "refused: ..."), as event("control", ...)."""
        self.event("control", table, {
            "id": command.get("id"), "action": command["action"], "name": command.get("name"),
            "value": command.get("text", command.get("value")), "by_user": command.get("by_user"),
            "by_host": command.get("by_host"), "at": command.get("at"), "outcome": outcome})

    def actions_frame(self) -> pd.DataFrame:
        """The commands this run applied, for the notebook: when sent and applied, by whom, outcome."""
        with self._mutex:
            found = db.rows(self.conn, "control/events", {"run_id": self.run_id, "after_id": 0})
        return pd.DataFrame([action(e) for e in found if e["kind"] == "control"], columns=ACTION_COLUMNS)


ACTION_COLUMNS = ["action", "name", "value", "sent_at", "applied_at", "by_user", "by_host", "table", "outcome"]


def action(event: dict) -> dict:
    """A control event as the manifest and the notebook show it."""
    d = event["detail"] or {}
    return {"action": d.get("action"), "name": d.get("name"), "value": d.get("value"), "sent_at": d.get("at"),
            "applied_at": _iso(event["at"]), "by_user": d.get("by_user"), "by_host": d.get("by_host"),
            "table": event.get("table"), "outcome": d.get("outcome")}


def throttle_summary(events: list[dict]) -> dict:
    """Throttle episodes among ``events``: {episodes, seconds, by_signal: {signal: seconds},
    replica_lag_max_bytes (the worst lag an episode saw, None: none waited for the replica)}."""
    episodes = [e for e in events if e["kind"] == "throttle"]
    by_signal: dict[str, float] = {}
    lags = []
    for e in episodes:
        signal = (e["detail"] or {}).get("signal") or "unknown"
        by_signal[signal] = round(by_signal.get(signal, 0.0) + (e["seconds"] or 0.0), 1)
        value = (e["detail"] or {}).get("value")
        if signal == "replica_lag" and isinstance(value, (int, float)):
            lags.append(int(value))
    return {"episodes": len(episodes), "seconds": round(sum(e["seconds"] or 0.0 for e in episodes), 1),
            "by_signal": by_signal, "replica_lag_max_bytes": max(lags) if lags else None}


def throttle_line(summary: dict | None) -> str | None:
    """``throttled 12.3 s in 2 episodes (replica_lag 10.1 s, autovacuum 2.2 s); replica lag up to
    80MB``, or None when it never waited."""
    if not summary or not summary.get("episodes"):
        return None
    n = summary["episodes"]
    signals = ", ".join(f"{k} {v:.1f} s" for k, v in (summary.get("by_signal") or {}).items())
    line = f"throttled {summary.get('seconds') or 0:.1f} s in {n} episode{'s' if n != 1 else ''}"
    line += f" ({signals})" if signals else ""
    if summary.get("replica_lag_max_bytes") is not None:
        line += f"; replica lag up to {health.size_text(summary['replica_lag_max_bytes'])}"
    return line


def action_line(a: dict) -> str:
    """``control: pause by alice from host-a at 10:15:02 UTC: paused``."""
    what = a["action"] + (f" {a.get('name')} {a.get('value')}" if a["action"] == "set" else "")
    when = _clock(a.get("sent_at"))
    return f"control: {what} by {a.get('by_user')} from {a.get('by_host')}{f' at {when}' if when else ''}: " \
           f"{a.get('outcome') or 'no outcome recorded'}"


class RunRecord:
    """What the runner records of its run's control actions and throttling (read on the runner's
    lock connection, after each stage): per stage, what happened during it; for the run, every
    action (commands sent but never applied too) and the throttle summary."""

    def __init__(self, lock: runlock.RunLock):
        self.lock = lock
        self.events: list[dict] = []
        self.key = self.since = None
        self.tables = False          # the control tables were seen

    def _conn(self) -> psycopg.Connection:
        return self.lock.conn

    def stage(self) -> dict:
        """{"control": [...], "throttle": {...}} of the events recorded since the last call ({}: none)."""
        if not present(self._conn()):
            return {}
        self.tables = True
        if self.key is None:
            mine = runlock.holder(self._conn())
            if mine is not None and mine.parsed and mine.holds_for(self.lock.run_id):
                self.key, self.since = mine.parsed[0], mine.since
        after = self.events[-1]["id"] if self.events else 0
        new = db.rows(self._conn(), "control/events", {"run_id": self.lock.run_id, "after_id": after})
        self.events += new
        out = {}
        actions = [action(e) for e in new if e["kind"] == "control"]
        if actions:
            out["control"] = actions
        if any(e["kind"] == "throttle" for e in new):
            out["throttle"] = throttle_summary(new)
        return out

    def so_far(self) -> dict:
        """The run's actions applied and its throttle summary, from the events read so far."""
        if not self.tables:
            return {}
        return {"control": [action(e) for e in self.events if e["kind"] == "control"],
                "throttle": throttle_summary(self.events)}

    def run(self) -> dict:
        """{"control": every action, "throttle": summary} of the whole run ({}: no control tables)."""
        if not present(self._conn()):
            return {}
        self.stage()
        actions = [action(e) for e in self.events if e["kind"] == "control"]
        applied = {str(e["detail"].get("id")) for e in self.events if e["kind"] == "control" and e["detail"]}
        if self.key is not None:
            for c in db.rows(self._conn(), "control/commands", {"run_id": self.key, "since": self.since}):
                if str(c["id"]) in applied:
                    continue
                outcome = ("not applied: taken at " + _utc(c["seen_at"]) + ", no outcome recorded (the stage ended)"
                           if c["seen_at"] else "not applied: the run's backfill did not take it before the run ended")
                actions.append({"action": c["action"], "name": c["name"], "value": c["value"],
                                "sent_at": _iso(c["at"]), "applied_at": None, "by_user": c["by_user"],
                                "by_host": c["by_host"], "table": None, "outcome": outcome})
        return {"control": actions, "throttle": throttle_summary(self.events)}


# --------------------------------------------------------------------------- status
@dataclass
class Status:
    where: str                          # the database, without password
    present: bool                       # the control tables exist
    holder: runlock.Holder | None       # the lock's holder (a run is active when it is a runbook run)
    run_id: str | None = None           # the run whose progress is shown
    rows: list[dict] = field(default_factory=list)
    pending: list[dict] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.holder is not None and self.holder.parsed is not None

    @property
    def exit_code(self) -> int:
        return 0 if self.active else 1


def status(conn: psycopg.Connection, where: str) -> Status:
    """The backfill's state as the database has it (``conn`` may be read-only)."""
    try:
        found = runlock.holder(conn)
        if not present(conn):
            return Status(where, False, found)
        recent = db.rows(conn, "control/progress", {"runs": RECENT_RUNS})
        out = Status(where, True, found)
        if out.active:
            mine = [r for r in recent if _of_holder(found, r)]
            out.pending = db.rows(conn, "control/pending", {"lock_pid": found.backend_pid, "lock_since": found.since})
        else:
            mine = recent
        if mine:
            out.run_id = max(mine, key=lambda r: r["updated_at"])["run_id"]
            out.rows = [r for r in recent if r["run_id"] == out.run_id]
        return out
    except psycopg.Error as exc:
        raise RunbookError(f"cannot read the backfill's state on {where}: {db.redact(str(exc)).strip()}") from None


def _of_holder(found: runlock.Holder, row: dict) -> bool:
    """Is the progress row the lock holder's run? Its run id (as the label keeps it), or, for a
    notebook run alone (given a run id of its own), the same process on the same host."""
    parsed = found.parsed
    return bool(parsed) and (found.holds_for(row["run_id"]) or (parsed[1], parsed[2]) == (row["pid"], row["host"]))


def status_lines(st: Status) -> list[str]:
    """What ``tenancy-runbook status`` prints."""
    holder = st.holder
    if st.active:
        run_id, pid, host = holder.parsed
        who = "a notebook run on its own" if runlock.is_notebook(run_id) else "run"
        lines = [f"{who} {run_id} is active on {st.where}: pid {pid} on host {host}, since {_utc(holder.since)}"]
        if not st.rows:
            lines.append("Its backfill has not reported progress yet (it has not started, or this run has no "
                         "backfill stage).")
    elif holder is not None:
        lines = [f"no run is active on {st.where}; the runbook's lock is held by {holder.describe()}"]
    else:
        lines = [f"no run is active on {st.where}"]
    if not st.present:
        if not st.active:
            lines.append("no backfill has run on this database (no progress recorded in schema tenancy_runbook)")
        return lines
    if not st.rows:
        if not st.active:
            lines.append("no backfill has run on this database (no progress recorded)")
        return lines
    updated = max(r["updated_at"] for r in st.rows)
    now = st.rows[0]["now"]
    if not st.active:
        first = st.rows[0]
        lines.append(f"Last known state: run {st.run_id}, on host {first['host']} (pid {first['pid']}), "
                     f"last updated {_utc(updated)} ({_ago(now - updated)} ago):")
    lines += _table(st.rows, now, st.active)
    if st.active:
        lines.append(f"last report {_ago(now - updated)} ago, on host {st.rows[0]['host']} (pid {st.rows[0]['pid']})")
    elif any(r["state"] not in ("done",) for r in st.rows):
        lines.append("The run ended before every table was done (stopped, aborted or failed): "
                     "running the stage again resumes.")
    for c in st.pending:
        what = c["action"] + (f" {c['name']} {c['value']}" if c["action"] == "set" else "")
        lines.append(f"pending: {what}, sent {_utc(c['at'])} by {c['by_user']} from {c['by_host']}: "
                     "the backfill applies it between batches")
    return lines


def _table(rows: list[dict], now: datetime, active: bool) -> list[str]:
    header = ["table", "rows done / total", "%", "rows/s", "ETA", "batch", "workers", "state"]
    body = []
    for r in rows:
        done, total = r["rows_done"], r["rows_total"]
        percent = f"{100.0 * done / total:.1f}%" if done is not None and total else ("100.0%" if total == 0 else "-")
        moving = r["state"] == "running" and r["rows_per_s"]
        left = (total - done) if done is not None and total is not None else None
        eta = _duration(left / r["rows_per_s"]) if moving and left is not None and left > 0 else "-"
        state = r["state"]
        if active and state not in ("done", "aborted", "failed") and (now - r["updated_at"]).total_seconds() > STALE_S:
            state += f" (no report for {_ago(now - r['updated_at'])})"
        body.append([r["table"], f"{_n(done)} / {_n(total)}", percent,
                     _n(round(r["rows_per_s"])) if moving else "-", eta, _n(r["batch_size"]),
                     _n(r["workers"]), state])
    widths = [max(len(str(row[i])) for row in [header] + body) for i in range(len(header))]
    right = {1, 2, 3, 4, 5, 6}
    fmt = lambda row: "  ".join((str(c).rjust(w) if i in right else str(c).ljust(w))   # noqa: E731
                                for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    return [fmt(header)] + [fmt(row) for row in body]


# --------------------------------------------------------------------------- helpers
def _where(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"{info.user}@{info.host}:{info.port}/{info.dbname}"


def _n(x) -> str:
    return "-" if x is None else f"{int(x):,}"


def _int(x):
    return None if x is None else int(x)


def _float(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def _iso(t) -> str | None:
    if t is None:
        return None
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds") if isinstance(t, datetime) else str(t)


def _utc(t) -> str:
    if t is None:
        return "an unknown time"
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(t) -> str:
    if not t:
        return ""
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.astimezone(timezone.utc).strftime("%H:%M:%S UTC")


def _duration(seconds: float) -> str:
    """``48s``, ``3m05s``, ``2h10m``."""
    hours, rest = divmod(max(0, int(round(seconds))), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _ago(delta) -> str:
    s = max(0.0, delta.total_seconds())
    return f"{s:.1f} s" if s < 60 else _duration(s)


def _dumps(obj) -> str:
    return json.dumps(obj, default=archive.plain)
