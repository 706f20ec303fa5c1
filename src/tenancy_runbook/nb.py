"""What the notebooks call besides their stage module: connecting, the DDL steps' retry policy
and their section, charts (charts.py, called as nb.bar and nb.line), ``%sql``, the summary, the
terminal."""

from __future__ import annotations

import io
import json
import os
from dataclasses import fields

import pandas as pd
import psycopg

from . import archive, db, params, runlock, spec
from .charts import bar, line, number  # noqa: F401 - the notebooks call nb.bar and nb.line
from .locks import DDLLog, RetryPolicy
from . import paths
from .paths import PROGRESS_ENV


def connect(read_only: bool = False, statement_timeout: str | None = None,
            lock_timeout: str | None = None) -> psycopg.Connection:
    """Connect to DATABASE_URL and say where (never with the password).

    Every transaction of the connection sets its own timeouts (``statement_timeout``, default
    1h; ``lock_timeout``, default none beyond it), so a role's defaults neither kill nor hang
    the stage, and is READ ONLY when ``read_only``. A writing connection first makes sure it
    talks to PostgreSQL directly, not through a transaction pooler.
    """
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.expand_frame_repr", False)   # one line per row in the text export
    url = db.database_url()
    if not read_only:
        db.require_direct(url)
    conn = db.connect(url, read_only=read_only, statement_timeout=statement_timeout,
                      lock_timeout=lock_timeout)
    if not read_only:
        runlock.for_notebook(conn)   # one run at a time per database (under the runner: its own)
    mode = "read-only" if read_only else "read-write"
    print(f"Connected to {db.describe(url)} from {db.ENV_VAR} ({mode} transactions, "
          f"statement_timeout {conn.settings['statement_timeout']})")
    print(spec_line())
    return conn


def spec_line(s: spec.Spec | None = None) -> str:
    """Which tenancy migration this notebook carries out: the spec's name, file and sha256 (as the
    manifest records them), its tenant column and its tables in backfill order."""
    s = s or spec.active()
    return (f"Tenancy spec {s.name!r} ({_shown_path(s.path)}, sha256 {s.sha256[:12]}): "
            f"{s.tenant.name} on {', '.join(s.table_names)}")


def _shown_path(path) -> str:
    try:
        return str(path.relative_to(paths.ROOT))
    except ValueError:
        return str(path)


def retry_policy(namespace: dict) -> RetryPolicy:
    """The DDL steps' retry policy from the notebook's parameters: ``nb.retry_policy(globals())``.

    Each field of RetryPolicy that is a notebook parameter (lock_timeout, statement_timeout,
    ddl_retry_total_s: the same names) takes the value ``namespace`` holds; the others keep
    their defaults.
    """
    return RetryPolicy(**{f.name: namespace[f.name] for f in fields(RetryPolicy)
                          if f.name in params.PARAMS and f.name in namespace})


DDL_STEPS_NOTE = (
    "Every DDL statement waits at most `lock_timeout` ({lock_timeout}) for its lock, so writers queued "
    "behind it wait no longer than that; it retries with exponential backoff and jitter for up to "
    "`ddl_retry_total_s` ({ddl_retry_total_s:g} s). `waited_ms`: time spent waiting over all attempts "
    "(backoff included); `held_ms`: how long the successful attempt took (for the brief steps, how long "
    "it held its lock).")


def ddl_steps(log: DDLLog, policy: RetryPolicy) -> None:
    """A notebook's "DDL steps" section: what the columns mean under ``policy``, every step
    ``log`` recorded (a table) and, when there is one, a chart of the time each step waited for
    its lock and held it."""
    from IPython.display import display

    note = DDL_STEPS_NOTE.format(lock_timeout=policy.lock_timeout, ddl_retry_total_s=policy.ddl_retry_total_s)
    display({"text/markdown": note, "text/plain": note.replace("`", "")}, raw=True)
    steps = log.frame()
    display(steps)
    if len(steps):
        bar(steps.fillna(0), x="step", y=["waited_ms", "held_ms"],
            title="Each DDL step: time spent waiting for its lock, and holding it", ylabel="ms")


def history(recorded) -> None:
    """What a stage recorded in Prisma's history (a history.Recorded): its sentence, and when it
    wrote a migration, the migration's text and its facts in the stage's summary."""
    print(recorded.message)
    if recorded.facts:
        print(recorded.sql)
        summary(**recorded.facts)


def enable_sql_magic(displaylimit: int = 50) -> None:
    """Load ipython-sql and connect ``%sql`` to DATABASE_URL.

    The URL goes to the magic directly, so it is never written into a cell; ipython-sql
    prints it with the password masked. ``%sql`` is for exploring: it prints a failing
    statement's error and carries on, so no gate rests on it.
    """
    from IPython import get_ipython

    ip = get_ipython()
    if ip is None:
        raise RuntimeError("enable_sql_magic() needs IPython (a notebook or ipython)")
    ip.run_line_magic("load_ext", "sql")
    ip.run_line_magic("config", f"SqlMagic.displaylimit = {int(displaylimit)}")
    ip.run_line_magic("sql", db.sqlalchemy_url())


def run_id(given: str) -> str:
    """The runner's run id, or, for a notebook run on its own, the ad-hoc one it holds the
    runbook's lock as (runlock.adhoc_run_id: "adhoc-<UTC time>-<hex>"), so that
    ``tenancy-runbook control`` reaches it."""
    return given or runlock.adhoc_run_id()


def summary(**facts) -> None:
    """What an operator must know of this stage, for the run's stage line and manifest.

    Shown as one output: JSON under archive.SUMMARY_MIME (the runner puts it into the stage's
    manifest record as ``summary`` and prints it under the stage's line) with a text/plain
    line per fact. Each fact: a number, text, a list, or a dict (``{table: rows}``, zeros left
    out of the line); a key ending in ``_s`` is seconds, in ``_bytes`` a size; None: left out.
    Called several times, the facts add up (a later value of the same name wins).

        nb.summary(rows_quarantined={"Connection": 2, "MetricDaily": 48})
    """
    from IPython.display import display

    plain = json.loads(json.dumps(facts, default=archive.plain))
    display({archive.SUMMARY_MIME: plain,
             "text/plain": "\n".join(archive.summary_lines(plain)) or "(nothing to report)"}, raw=True)


def terminal():
    """The runner's terminal, for a progress bar there (None: the runner has none, or this is
    not run by the runner). The runner names the device in paths.PROGRESS_ENV; the kernel's
    own stderr is no way there: ipykernel puts whatever is written to file descriptor 2 into
    the notebook too. Writes that fail (the terminal went away) are dropped: a progress bar
    never stops the work it shows."""
    global _terminal
    path = os.environ.get(PROGRESS_ENV, "")
    if _terminal is not None and not _terminal.closed and _terminal.path == path:
        return _terminal             # opened once per kernel
    if not path.startswith("/"):
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    except OSError:
        return None
    if not os.isatty(fd):
        os.close(fd)
        return None
    _terminal = _Terminal(fd, path)
    return _terminal


_terminal = None


class _Terminal(io.TextIOBase):
    """A text stream on a terminal device: tqdm draws on it."""

    encoding = "utf-8"

    def __init__(self, fd: int, path: str):
        self._fd, self.path = fd, path

    def write(self, text: str) -> int:
        try:
            os.write(self._fd, text.encode("utf-8", "replace"))
        except OSError:
            pass
        return len(text)

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            except OSError:
                pass
        super().close()
