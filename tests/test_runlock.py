"""One run at a time per database: a second run, or a writing notebook run on its own, stops at
once naming the holder, and touches nothing. The tests whose stages write run once per app (Data
Hub, and the projects app), each by its spec."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import column_states, run_runbook, stage_lines, start_run

from tenancy_runbook import nb, runlock
from tenancy_runbook.paths import NOTEBOOKS_DIR, ROOT



def test_two_runs_started_together_one_proceeds_the_other_exits_2_naming_it(app, seeded, tmp_path):
    url = seeded()
    runs = {name: start_run(url, tmp_path / name, "--to", "10_add_workspace_columns")
            for name in ("first", "second")}
    waiting = dict(runs)
    ended = []                     # in the order they ended
    while waiting:
        for name, proc in list(waiting.items()):
            if proc.poll() is not None:
                ended.append(name)
                del waiting[name]
        time.sleep(0.05)
    outputs = {name: proc.communicate() for name, proc in runs.items()}
    codes = {name: proc.returncode for name, proc in runs.items()}

    assert sorted(codes.values()) == [0, 2], outputs
    winner = next(name for name, code in codes.items() if code == 0)
    loser = next(name for name, code in codes.items() if code == 2)
    assert ended[0] == loser, "the second run did not wait for the first"
    stdout, stderr = outputs[loser]
    assert stdout == "" and "Traceback" not in stderr
    assert "error: another run holds the database " in stderr, stderr
    assert (f"run {winner} (pid {runs[winner].pid} on host {socket.gethostname()}, since " in stderr), stderr
    assert "One run at a time per database" in stderr and "Nothing was done." in stderr
    assert not (tmp_path / loser).exists(), "the second run wrote no run directory"
    assert stage_lines(outputs[winner][0]) == {"00_preflight": "ok", "10_add_workspace_columns": "ok"}
    assert column_states(url) == {t: "YES" for t in app.tables}


@pytest.fixture
def notebook_lock():
    """Release what nb.connect() took in this process (as a kernel ending would)."""
    yield
    if runlock._notebook_lock is not None:
        runlock._notebook_lock.close()
        runlock._notebook_lock = None


def test_a_writing_notebook_run_on_its_own_fails_clearly_while_a_run_holds_the_lock(app, seeded, tmp_path):
    url = seeded()
    lock = runlock.acquire(url, "20261125T101500Z-1a2b3c")       # what the runner holds for its whole run
    try:
        env = {**os.environ, "DATABASE_URL": url,     # and the app's spec (TENANCY_RUNBOOK_SPEC)
               "TENANCY_RUNBOOK_RUN_ID": "20261125T101500Z-1a2b3c"}   # the holder's id, but not its kernel
        result = subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / "10_add_workspace_columns.ipynb"),
                                 str(tmp_path / "out.ipynb")], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=300)
    finally:
        lock.close()
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "RunbookError: another run holds the database" in output, output
    assert f"run 20261125T101500Z-1a2b3c (pid {os.getpid()} on host {socket.gethostname()}, since " in output
    assert "This notebook writes, so it waits for no one" in output
    assert column_states(url) == {t: "absent" for t in app.tables}, "nothing was written"

    env.pop("TENANCY_RUNBOOK_RUN_ID")               # once that run has ended, the notebook runs (confirmed)
    result = subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / "10_add_workspace_columns.ipynb"),
                             str(tmp_path / "out2.ipynb"), "-p", "confirm", "True"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert column_states(url) == {t: "YES" for t in app.tables}


def test_a_notebook_holding_the_lock_holds_off_a_run(datahub, tmp_path, monkeypatch, notebook_lock):
    # Data Hub only: the lock is the database's, taken before any spec is read; nothing is written
    url = datahub()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("TENANCY_RUNBOOK_RUN_ID", raising=False)
    conn = nb.connect()                               # a writing notebook in JupyterLab: this process is its kernel
    conn.close()                                      # the lock is on a connection of its own, kept
    nb.connect().close()                              # connecting again in the same kernel is fine

    result = run_runbook(url, tmp_path / "run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"a notebook kernel (pid {os.getpid()} on host {socket.gethostname()}, since " in result.stderr
    assert "Kernel > Shut Down Kernel" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()

    runlock._notebook_lock.close()                    # the kernel shut down
    runlock._notebook_lock = None
    result = run_runbook(url, tmp_path / "run", "--to", "00_preflight")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lock_label_fits_application_name_and_names_the_holder():
    # Data Hub only (no database): the label's format
    name = runlock.label("r" * 80, 4194304, "a-very-long-host-name.example.internal")
    assert len(name.encode()) <= 63 and " 4194304@a" in name
    assert runlock.label("run ü", 12, "host") == "tenancy-runbook lock run__ 12@host"   # as PostgreSQL keeps it
    found = runlock.Holder(1, runlock.label("20261125T101500Z-1a2b3c", 77, "db-runner"), None)
    assert found.parsed == ("20261125T101500Z-1a2b3c", 77, "db-runner")
    assert found.describe() == "run 20261125T101500Z-1a2b3c (pid 77 on host db-runner, since an unknown time)"
    assert runlock.Holder(5, "psql", None, "bob").describe().startswith("database session 5 (application 'psql'")

