"""What the notebooks call besides their stage module: connecting, charts, ``%sql``."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import pandas as pd
import psycopg

from . import db, runlock


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
    print(f"Connected to {db.describe(url)} ({mode} transactions, "
          f"statement_timeout {conn.settings['statement_timeout']})")
    return conn


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


def bar(frame: pd.DataFrame, x: str, y: str | list[str], title: str, ylabel: str = "rows"):
    """A bar chart of ``frame`` (shown inline; zero bars are drawn as zero)."""
    long_labels = frame[x].astype(str).str.len().max() > 14 if len(frame) else False
    ax = frame.plot.bar(x=x, y=y, title=title, rot=25 if long_labels else 0, legend=isinstance(y, list),
                        figsize=(7, 3.6 if long_labels else 3))
    if long_labels:
        plt.setp(ax.get_xticklabels(), ha="right")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    top = frame[y].to_numpy().max() if len(frame) else 0
    ax.set_ylim(0, max(1, float(top) * 1.15))        # all zeros still reads as zero
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for container in ax.containers:
        ax.bar_label(container, fmt="%d")
    plt.tight_layout()
    plt.show()


def line(frame: pd.DataFrame, x: str, y: str, title: str, ylabel: str, by: str | None = None):
    """A line chart of ``frame`` (one line per value of ``by``), shown inline."""
    fig, ax = plt.subplots(figsize=(7, 3))
    groups = frame.groupby(by) if by else [(y, frame)]
    for name, part in groups:
        ax.plot(part[x].to_numpy(), part[y].to_numpy(), marker=".", linewidth=1, label=str(name))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(x)
    if by:
        ax.legend()
    ax.set_ylim(bottom=0)
    plt.tight_layout()
    plt.show()


def run_id(given: str) -> str:
    """The runner's run id, or an ad-hoc one for a notebook run on its own."""
    if given:
        return given
    from datetime import datetime, timezone
    return "adhoc-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
