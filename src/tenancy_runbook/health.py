"""Yield to database health between backfill batches: standbys' replay lag and autovacuum.

Between batches the backfill calls :meth:`Throttle.wait`. It reads the health of the database
(at most once a second: two cheap queries in one transaction) and, while a signal is over its
limit, waits and reads again, then lets the backfill continue:

* ``replica_lag``: the worst standby's replay lag in bytes (``pg_stat_replication``), over
  ``max_replica_lag`` (a size, ``64MB`` by default; 0 = not watched). Batches commit with
  ``synchronous_commit = off``, so WAL can run ahead of the standbys; this is the brake.
* ``autovacuum``: a VACUUM by autovacuum working on the table being backfilled. ``on_autovacuum``
  ``wait_wraparound`` (default) waits while an anti-wraparound one works (never fight it: it cannot
  be skipped, and it comes back until it finishes); ``wait`` waits for any; ``continue`` never.
  Our batches take ROW EXCLUSIVE, which does not cancel autovacuum: fighting it means competing
  for I/O and making more dead rows while it runs.

The total time waited in one stage is bounded by ``max_throttle_wait`` (``1h``; 0 = no limit);
past it the stage stops with a gate failure that says which signal, its value and limit, and what
to do. Every contiguous wait for one signal is an episode (signal, worst value, seconds), and
every reading a sample (for the replica lag chart); both go into the evidence.

When standbys exist but the role cannot read their replay position (not a superuser, nor a member
of pg_monitor / pg_read_all_stats), replica lag cannot be watched: the throttle says so once in
:attr:`Throttle.warnings` and goes on (``GRANT pg_monitor TO <role>`` fixes it), rather than
failing a run that was fine without a standby check, or pretending the lag is zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
import psycopg

from . import db, params
from .errors import GateFailed, RunbookError

SQL = ("health/replica_lag", "health/autovacuum")

SIGNALS = ("replica_lag", "autovacuum")
STATES = {"replica_lag": "waiting for replica", "autovacuum": "waiting for autovacuum"}
AUTOVACUUM_RANK = {None: 0, "regular": 1, "wraparound": 2}


@dataclass
class Limits:
    max_replica_lag: int = 64 * 2**20       # bytes; 0 = not watched
    on_autovacuum: str = "wait_wraparound"  # | "wait" | "continue"
    max_wait_s: float = 3600.0              # total throttled time allowed in one stage; 0 = no limit

    @classmethod
    def from_params(cls, max_replica_lag: str, on_autovacuum: str, max_throttle_wait: str) -> "Limits":
        """Limits from the notebook's parameters (as params.py declares them); RunbookError naming
        the parameter when one is not usable."""
        try:
            lag = params.size_bytes(max_replica_lag)
        except ValueError as exc:
            raise RunbookError(f"max_replica_lag = {max_replica_lag!r}: {exc}; expected "
                               f"{params.SIZE_ALLOWED}") from None
        if on_autovacuum not in params.AUTOVACUUM_CHOICES:
            raise RunbookError(f"on_autovacuum = {on_autovacuum!r}: expected one of "
                               + ", ".join(params.AUTOVACUUM_CHOICES))
        try:
            wait_ms = params.duration_ms(max_throttle_wait)
        except ValueError as exc:
            raise RunbookError(f"max_throttle_wait = {max_throttle_wait!r}: {exc}; expected "
                               f"{params.DURATION_ALLOWED}") from None
        return cls(max_replica_lag=lag, on_autovacuum=on_autovacuum, max_wait_s=wait_ms / 1000)


@dataclass
class Reading:
    at: str                     # ISO 8601, UTC
    replica_lag: int | None     # bytes, worst standby; None: no standby, or its lag is not visible
    standbys: int
    lag_visible: bool           # False: standbys exist but this role cannot read their replay position
    autovacuum: str | None      # "regular" | "wraparound": autovacuum works on the table now


def read(conn: psycopg.Connection, table: str) -> Reading:
    """The health of the database as the backfill of ``table`` sees it (``conn``: a connection
    from db.connect; one short transaction, two queries)."""
    with conn.transaction():
        lag = db.one(conn, "health/replica_lag")
        vacuums = db.rows(conn, "health/autovacuum", {"table": table})
    return Reading(at=_now(), replica_lag=lag["lag_bytes"], standbys=lag["standbys"],
                   lag_visible=lag["visible"] == lag["standbys"], autovacuum=autovacuum_kind(vacuums))


def autovacuum_kind(vacuums: list[dict]) -> str | None:
    """"wraparound" / "regular" / None from the rows of health/autovacuum.sql. A VACUUM whose
    owner this role cannot see (autovacuum NULL) counts as autovacuum's; a visible manual one
    (an operator's VACUUM) does not."""
    kind = None
    for row in vacuums:
        if row["autovacuum"] is False:
            continue
        found = "wraparound" if row["wraparound"] else "regular"
        if AUTOVACUUM_RANK[found] > AUTOVACUUM_RANK[kind]:
            kind = found
    return kind


def over(reading: Reading, limits: Limits) -> tuple[str, object, object] | None:
    """(signal, value, limit) of the first signal over its limit, or None when the backfill may go
    on. An invisible lag is never "over" (see :func:`visibility_warning`)."""
    if (limits.max_replica_lag and reading.replica_lag is not None
            and reading.replica_lag > limits.max_replica_lag):
        return "replica_lag", reading.replica_lag, limits.max_replica_lag
    if reading.autovacuum and (limits.on_autovacuum == "wait"
                               or (limits.on_autovacuum == "wait_wraparound"
                                   and reading.autovacuum == "wraparound")):
        return "autovacuum", reading.autovacuum, limits.on_autovacuum
    return None


def visibility_warning(reading: Reading, limits: Limits) -> str | None:
    """The warning for a replica lag that should be watched but cannot be read, else None."""
    if not limits.max_replica_lag or reading.lag_visible or not reading.standbys:
        return None
    return (f"replica lag cannot be read: {reading.standbys} standby(s) stream from this server, but "
            "this role cannot see their replay position, so max_replica_lag is not enforced. "
            "Grant it: GRANT pg_monitor TO <the runbook's role>; (or run with -p max_replica_lag 0 "
            "to say that it need not be watched).")


def size_text(value) -> str:
    """64MB, 1.5GB, 812kB, 17B: bytes as an operator reads them (PostgreSQL's units)."""
    if value is None:
        return "unknown"
    value = float(value)
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.1f}".removesuffix(".0") + unit
    return f"{int(value)}B"


class Throttle:
    """Waits between batches while the database's health is over a limit; episodes and samples
    for the evidence. ``limits`` may be changed while it runs (``control set max_replica_lag``).
    Not thread-safe: the caller serialises calls."""

    POLL_S = 1.0
    NEAR = 0.5    # a replica lag at this share of max_replica_lag or more is read before every batch


    def __init__(self, limits: Limits):
        self.limits = limits
        self.episodes: list[dict] = []    # {table, signal, value (worst seen), limit, started_at, seconds}
        self.samples: list[dict] = []     # {at, table, replica_lag, standbys, autovacuum}
        self.warnings: list[str] = []     # said once each (replica lag that cannot be read)
        self.waited_s = 0.0
        self._last_read = None            # monotonic time of the last reading
        self.near = False                 # the last reading was close to a limit (see NEAR)

    # ---------------------------------------------------------------- the loop's call
    def wait(self, conn: psycopg.Connection, table: str, on_poll=lambda: None,
             on_state=lambda state: None) -> float:
        """Read the health (unless read less than POLL_S ago) and wait while a signal is over its
        limit: on_state("waiting for replica" | "waiting for autovacuum") when a wait starts or its
        signal changes, then every POLL_S on_poll() (control commands; it may raise to abort) and
        read again. GateFailed once the stage's total wait passes limits.max_wait_s. The seconds
        waited in this call."""
        if not self.due():
            return 0.0
        signal = over(self._read(conn, table), self.limits)
        if signal is None:
            return 0.0
        started = time.monotonic()
        episode = None
        try:
            while signal is not None:
                now = time.monotonic()
                if episode is None or episode["signal"] != signal[0]:
                    if episode is not None:
                        self._close(episode, now)
                    episode = self._open(table, signal, now)
                    on_state(STATES[signal[0]])
                else:
                    self._worse(episode, signal)
                total = self.waited_s + (now - started)
                if self.limits.max_wait_s and total > self.limits.max_wait_s:
                    raise GateFailed(self._too_long(table, signal, total))
                pause = self.POLL_S
                if self.limits.max_wait_s:   # wake up in time to stop at the bound, not a poll late
                    pause = min(pause, max(self.limits.max_wait_s - total, 0.0) + 0.01)
                time.sleep(pause)
                on_poll()
                signal = over(self._read(conn, table), self.limits)
        finally:
            ended = time.monotonic()
            if episode is not None:
                self._close(episode, ended)
            self.waited_s += ended - started
        return ended - started

    def due(self) -> bool:
        """Whether to read the health now: POLL_S after the last reading, and before every batch
        while the replica lag was near its limit (half of it or more). Read once a second only,
        the lag could pass the limit by a second's WAL of every worker (over 100 MB with two
        workers on an idle server) before the backfill sees it."""
        return (self._last_read is None or self.near
                or time.monotonic() - self._last_read >= self.POLL_S)

    def _read(self, conn, table: str) -> Reading:
        reading = read(conn, table)
        self._last_read = time.monotonic()
        limit = self.limits.max_replica_lag
        self.near = bool(limit and reading.replica_lag is not None and reading.replica_lag >= limit * self.NEAR)
        self.samples.append({"at": reading.at, "table": table, "replica_lag": reading.replica_lag,
                             "standbys": reading.standbys, "autovacuum": reading.autovacuum})
        warning = visibility_warning(reading, self.limits)
        if warning and warning not in self.warnings:
            self.warnings.append(warning)
        return reading

    def _open(self, table: str, signal: tuple, now: float) -> dict:
        name, value, limit = signal
        episode = {"table": table, "signal": name, "value": value, "limit": limit,
                   "started_at": _now(), "seconds": 0.0, "_t0": now}
        self.episodes.append(episode)
        return episode

    @staticmethod
    def _worse(episode: dict, signal: tuple) -> None:
        name, value, limit = signal
        episode["limit"] = limit        # the limit may have been changed meanwhile
        if name == "replica_lag":
            episode["value"] = max(episode["value"], value)
        elif AUTOVACUUM_RANK[value] > AUTOVACUUM_RANK[episode["value"]]:
            episode["value"] = value

    @staticmethod
    def _close(episode: dict, now: float) -> None:
        episode["seconds"] = round(now - episode.pop("_t0"), 3)

    def _too_long(self, table: str, signal: tuple, total: float) -> str:
        name, value, limit = signal
        bound = f"max_throttle_wait = {_seconds_text(self.limits.max_wait_s)}"
        head = (f"The backfill of {table} has waited {_seconds_text(total)} in this stage for the "
                f"database's health, more than {bound}. ")
        if name == "replica_lag":
            return head + (
                f"A standby is {size_text(value)} behind in replaying WAL, over max_replica_lag = "
                f"{size_text(limit)}. Find out why it does not catch up (on the primary: SELECT "
                "application_name, state, replay_lag FROM pg_stat_replication; on the standby: SELECT "
                "pg_get_wal_replay_pause_state()), and fix the standby; or raise the limit while the "
                "run goes on with `tenancy-runbook control set max_replica_lag 256MB` (or -p "
                "max_replica_lag 256MB, or -p max_throttle_wait 2h, when you run it again). Run the "
                "stage again once it has caught up: the backfill resumes where it stopped.")
        what = "an anti-wraparound autovacuum" if value == "wraparound" else "autovacuum"
        return head + (
            f"{what} works on {table} (on_autovacuum = {limit}). Let it finish (SELECT * FROM "
            "pg_stat_progress_vacuum shows how far it is; never cancel an anti-wraparound one: it "
            "comes straight back), then run the stage again: the backfill resumes where it stopped. "
            + ("Or run with -p on_autovacuum wait_wraparound to wait only for anti-wraparound ones, "
               "or -p max_throttle_wait 2h." if limit == "wait" else "Or run with -p max_throttle_wait 2h."))

    # ---------------------------------------------------------------- evidence
    def episodes_frame(self) -> pd.DataFrame:
        columns = ["table", "signal", "value", "limit", "started_at", "seconds"]
        return pd.DataFrame([{k: e[k] for k in columns} for e in self.episodes], columns=columns)

    def samples_frame(self) -> pd.DataFrame:
        """Every reading; ``at`` as a timestamp and ``replica_lag_mb`` for the chart."""
        frame = pd.DataFrame(self.samples, columns=["at", "table", "replica_lag", "standbys", "autovacuum"])
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        frame["replica_lag_mb"] = pd.to_numeric(frame["replica_lag"], errors="coerce") / 2**20
        return frame

    def summary(self) -> dict:
        """{"episodes": n, "seconds": s, "by_signal": {signal: seconds}, "replica_lag_max_bytes": int|None}"""
        by_signal: dict[str, float] = {}
        for episode in self.episodes:
            by_signal[episode["signal"]] = round(by_signal.get(episode["signal"], 0.0)
                                                 + episode.get("seconds", 0.0), 3)
        lags = [s["replica_lag"] for s in self.samples if s["replica_lag"] is not None]
        return {"episodes": len(self.episodes), "seconds": round(self.waited_s, 3), "by_signal": by_signal,
                "replica_lag_max_bytes": max(lags) if lags else None}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _seconds_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g}h"
    if seconds >= 60:
        return f"{seconds / 60:.3g}min"
    return f"{seconds:.3g}s"
