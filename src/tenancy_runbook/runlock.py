"""One run at a time per database: a session advisory lock, held for the whole run.

The runner takes it on a connection of its own before it writes anything (no run directory,
no stage) and keeps it until the run ends; a second run finds it taken and stops at once
(RunbookError, exit 2), naming the holder. Nothing is written to the database to say who
holds it: the holding session carries its identity in its ``application_name``
("tenancy-runbook lock <run id> <pid>@<host>"), read back through pg_locks and
pg_stat_activity (whose ``backend_start`` says since when).

A writing notebook run on its own (plain papermill, JupyterLab) takes the same lock through
:func:`for_notebook`, kept for the kernel's life, as the run :func:`adhoc_run_id` (the id
``nb.run_id("")`` gives the notebook); under the runner it finds its own runner holding it
and does nothing. So the run that holds the lock is always named by the run id its notebooks
use: what ``tenancy-runbook control`` addresses (control.py) is what the backfill listens to.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg

from . import db
from .errors import RunbookError

KEY = {"classid": 0x74726275, "objid": 0x6C6F636B}   # pg_try_advisory_lock(int4, int4): "trbu", "lock"
PREFIX = "tenancy-runbook lock "
ADHOC = "adhoc-"               # a notebook run on its own holds the lock as run "adhoc-<UTC time>-<hex>"
NOTEBOOK = "notebook"          # ... and did so as run "notebook" before (still recognised)
NAME_MAX = 63                  # PostgreSQL keeps 63 bytes of an application_name
STATEMENT_TIMEOUT = "10s"      # the lock session's own queries are small
SQL = ("runlock/try_lock", "runlock/holder", "runlock/stop_backends", "runlock/run_backends", "runlock/unlock")
# what a writing stage's own connection runs before its first write (nb.connect(read_only=False)):
# the pooler probe, then this lock (its runner's, or taken for the kernel's life)
WRITER_SQL = db.PROBE_SQL + ("runlock/holder", "runlock/try_lock")


def host() -> str:
    return socket.gethostname()


_adhoc_id: str | None = None


def adhoc_run_id() -> str:
    """This process's run id when it is a notebook run on its own (the same for its whole life):
    the lock it takes (for_notebook) and what nb.run_id("") gives the notebook."""
    global _adhoc_id
    if _adhoc_id is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        _adhoc_id = f"{ADHOC}{stamp}-{uuid.uuid4().hex[:6]}"
    return _adhoc_id


def is_notebook(run_id: str) -> bool:
    """Is ``run_id`` (from a lock label) a notebook run on its own?"""
    return run_id == NOTEBOOK or run_id.startswith(ADHOC)


def _ascii(text: str) -> str:
    """PostgreSQL keeps printable ASCII of an application_name only: keep it exact."""
    return re.sub(r"[^\x21-\x7e]", "_", str(text))


def label(run_id: str, pid: int, hostname: str) -> str:
    """The lock session's application_name: run id, OS pid and host of the holder, clipped to
    63 bytes (the host first, then the run id; the pid always stays whole)."""
    run_id, hostname = _ascii(run_id), _ascii(hostname)
    keep = NAME_MAX - len(PREFIX) - len(f" {pid}@") - 1      # at least one character of host
    return f"{PREFIX}{run_id[:keep]} {pid}@{hostname}"[:NAME_MAX]


@dataclass
class Holder:
    backend_pid: int
    application_name: str
    since: datetime | None
    user: str | None = None
    client_addr: str | None = None

    @property
    def parsed(self) -> tuple[str, int, str] | None:
        """(run id, OS pid, host) from a runbook lock session's application_name."""
        found = re.fullmatch(re.escape(PREFIX) + r"(.+) (\d+)@(.*)", self.application_name or "")
        return (found[1], int(found[2]), found[3]) if found else None

    def describe(self) -> str:
        since = (self.since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                 if self.since else "an unknown time")
        parsed = self.parsed
        if parsed is None:
            return (f"database session {self.backend_pid} (application {self.application_name!r}, "
                    f"user {self.user}, from {self.client_addr or 'a local socket'}, since {since})")
        run_id, pid, where = parsed
        who = "a notebook kernel" if is_notebook(run_id) else f"run {run_id}"
        return f"{who} (pid {pid} on host {where}, since {since})"

    def advice(self) -> str:
        parsed = self.parsed
        if parsed and is_notebook(parsed[0]):
            return ("shut that kernel down (JupyterLab: Kernel > Shut Down Kernel; papermill: let it end) "
                    "and try again")
        if parsed:
            return (f"wait for it to end, or stop it (Ctrl-C where it runs, or kill -TERM {parsed[1]} on "
                    f"{parsed[2]}: it stops cleanly), then run again")
        return f"wait for that session to end (or end it: SELECT pg_terminate_backend({self.backend_pid})), then run again"

    def holds_for(self, run_id: str) -> bool:
        """Is this the lock session of the run ``run_id``? Its label names that run (clipped as
        label() clips it: a long run id is compared as far as the label keeps it)."""
        parsed = self.parsed
        return bool(parsed) and label(run_id, parsed[1], parsed[2]) == self.application_name


def holder(conn: psycopg.Connection) -> Holder | None:
    """Who holds the lock in the connection's database, or None."""
    found = db.rows(conn, "runlock/holder", KEY)
    if not found:
        return None
    row = found[0]
    return Holder(row["backend_pid"], row["application_name"], row["backend_start"], row["user"],
                  row["client_addr"])


def own(conn: psycopg.Connection, run_id: str) -> Holder | None:
    """The lock's holder if it is the run ``run_id`` (its runner's session, or this process's
    own notebook lock, whatever run id the notebook was given), else None."""
    found = holder(conn)
    if found is None:
        return None
    if found.holds_for(run_id):
        return found
    mine = _notebook_lock
    if mine is not None and not mine.closed and found.backend_pid == mine.info.backend_pid:
        return found
    return None


def _busy(url: str, found: Holder, what: str) -> RunbookError:
    return RunbookError(
        f"another run holds the database {db.describe(url)}: {found.describe()}. One run at a time "
        f"per database: {found.advice()}. {what}")


class RunLock:
    """The lock, held by this session until close() (or until the process ends)."""

    def __init__(self, url: str, run_id: str):
        self.url, self.run_id = url, run_id
        self.conn = _take(url, label(run_id, os.getpid(), host()))

    def ensure(self) -> None:
        """Still held (between stages): a session lost on the way is replaced, if no one else
        took the lock meanwhile (RunbookError naming the holder then)."""
        try:
            db.rows(self.conn, "runlock/try_lock", KEY)      # held: a no-op (advisory locks stack)
            return
        except psycopg.OperationalError:
            self.conn.close()
        self.conn = _take(self.url, label(self.run_id, os.getpid(), host()),
                          "The run stopped before its next stage.")

    def stop_backends(self, terminate: bool = False) -> list[int]:
        """Cancel the statements the run's sessions are running (or end those sessions)."""
        found = db.rows(self.conn, "runlock/stop_backends", {
            "application_name": db.run_application_name(self.run_id), "terminate": terminate})
        return [r["pid"] for r in found]

    def run_backends(self) -> list[dict]:
        """The run's sessions still connected."""
        return db.rows(self.conn, "runlock/run_backends",
                       {"application_name": db.run_application_name(self.run_id)})

    def close(self) -> None:
        """Release the lock at once (sql/runlock/unlock.sql), then end the session."""
        try:
            if not self.conn.closed:
                db.rows(self.conn, "runlock/unlock")
        except psycopg.Error:
            pass               # the session is gone or going: PostgreSQL releases the lock with it
        self.conn.close()


def acquire(url: str, run_id: str) -> RunLock:
    """Take the lock for the run ``run_id``, or a RunbookError naming who holds it."""
    return RunLock(url, run_id)


def _take(url: str, name: str, what: str = "Nothing was done.") -> psycopg.Connection:
    conn = db.connect(url, read_only=True, application_name=name, statement_timeout=STATEMENT_TIMEOUT)
    try:
        for _ in range(3):      # the holder may let go between the two statements: look again
            if db.one(conn, "runlock/try_lock", KEY)["acquired"]:
                return conn
            found = holder(conn)
            if found:
                raise _busy(url, found, what)
        raise RunbookError(f"could not take the runbook's lock on {db.describe(url)}: it is taken "
                           f"and let go again repeatedly. Try again. {what}")
    except BaseException:
        conn.close()
        raise


# --------------------------------------------------------------------------- notebooks
_notebook_lock: psycopg.Connection | None = None


def for_notebook(conn: psycopg.Connection) -> None:
    """The lock for a writing notebook (nb.connect calls it), on ``conn``'s database.

    Under the runner (TENANCY_RUNBOOK_RUN_ID set, and that run, this kernel's parent process,
    holds the lock) nothing is done. Otherwise the lock is taken on a connection of its own as
    the run adhoc_run_id(), kept until the kernel ends; held by someone else, a RunbookError
    names them.
    """
    global _notebook_lock
    if _notebook_lock is not None and not _notebook_lock.closed:
        return
    url = db.database_url()
    run_id = os.environ.get(db.RUN_ID_ENV)
    if run_id:
        found = holder(conn)
        if found and found.application_name == label(run_id, os.getppid(), host()):
            return
    _notebook_lock = _take(url, label(adhoc_run_id(), os.getpid(), host()),
                           "This notebook writes, so it waits for no one: run it again once that "
                           "run has ended. Nothing was done.")
