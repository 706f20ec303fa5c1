"""See and steer a backfill from outside its kernel: progress and commands through the database
(control.py), `tenancy-runbook status` and `control`, the stage lines and manifest, the terminal.
A rollback's restore runs once per app (Data Hub, the projects app), each by its spec; the
commands, the status and the terminal read no spec (the table names they report are labels) and
are tested on Data Hub."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time

import nbformat
import pytest
from conftest import cli, query, run_runbook, start_run
from test_runlock import notebook_lock  # noqa: F401 (a fixture)
from test_live import wait_for

from tenancy_runbook import control, db, nb, runlock, runner
from tenancy_runbook.errors import RunbookError
from tenancy_runbook.paths import ROOT


def commands(url: str) -> list:
    return query(url, "SELECT action, name, value, seen_at IS NOT NULL FROM tenancy_runbook.commands ORDER BY id")


def report(live: control.Live, table: str, done: int, total: int, state: str = "running") -> None:
    live.report(table, rows_total=total, rows_done=done, rows_per_s=500.0, batch_size=1000, workers=1, state=state)


# --------------------------------------------------------------------------- the API
def test_a_command_reaches_the_run_holding_the_lock_once_and_no_later_run(database):
    with db.connect(database) as conn:
        with pytest.raises(control.NoRun, match="no run is active on .*nothing was sent") as refused:
            control.send(conn, "pause")
        assert refused.value.exit_code == 1
        assert not control.present(conn), "a refused command creates nothing"

        lock = runlock.acquire(database, "run-a")
        live = control.Live(db.connect(database), "run-a")
        other = control.Live(db.connect(database), "run-b")        # not the lock's run
        sent = control.send(conn, "set", "target_batch_ms", "250", host="ops-laptop")
        control.send(conn, "pause", host="ops-laptop")
        assert sent.run_id == "run-a" and sent.holder.parsed[0] == "run-a" and not sent.reporting

        taken = live.poll()
        assert [(c["action"], c["name"], c["value"], c["text"]) for c in taken] == [
            ("set", "target_batch_ms", 250.0, "250"), ("pause", None, None, None)]
        assert taken[0]["by_host"] in ("ops-laptop", "ops-laptop (127.0.0.1)", "ops-laptop (::1)")
        assert taken[0]["by_user"] == conn.info.user and taken[0]["id"] == sent.id
        assert live.poll() == [] and other.poll() == [], "taken once, by that run only"
        assert [c[3] for c in commands(database)] == [True, True]

        control.send(conn, "abort")                 # the run ends before taking it
        lock.close()
        with pytest.raises(control.NoRun):
            control.send(conn, "resume")
        again = runlock.acquire(database, "run-a")    # a later run, even of the same name
        try:
            assert control.Live(db.connect(database), "run-a").poll() == [], "a later run obeys nothing left over"
        finally:
            again.close()
        assert [c[0] for c in commands(database)] == ["set", "pause", "abort"]


def test_the_run_id_a_command_addresses_is_the_one_the_notebook_uses(database, monkeypatch, notebook_lock):
    # a notebook run on its own (JupyterLab, papermill): nb.connect() takes the lock as nb.run_id("")
    monkeypatch.setenv("DATABASE_URL", database)
    monkeypatch.delenv(db.RUN_ID_ENV, raising=False)
    conn = nb.connect()
    run_id = nb.run_id("")
    assert run_id.startswith("adhoc-") and run_id == nb.run_id("")
    with db.connect(database) as sender:
        holder = runlock.holder(sender)
        assert holder.parsed[0] == run_id and holder.describe().startswith("a notebook kernel (pid ")
        control.ensure(conn)
        live, given = control.Live(conn, run_id), control.Live(db.connect(database), "given-by-hand")
        sent = control.send(sender, "pause")
        assert sent.run_id == run_id
        assert [c["id"] for c in live.poll()] == [sent.id]
        sent = control.send(sender, "resume")   # given a run id of its own (-p run_id ...): the same lock
        assert [c["id"] for c in given.poll()] == [sent.id]

    # under the runner: a run id longer than the lock's label keeps is matched as far as it is kept
    runlock._notebook_lock.close()
    runlock._notebook_lock = None
    long_id = "a-run-directory-named-at-some-length-by-hand-" + "x" * 20
    lock = runlock.acquire(database, long_id)
    try:
        with db.connect(database) as sender:
            assert runlock.holder(sender).parsed[0] != long_id       # clipped in application_name
            sent = control.send(sender, "pause")
            assert [c["id"] for c in control.Live(db.connect(database), long_id).poll()] == [sent.id]
            assert control.Live(db.connect(database), long_id[:-1] + "y").poll() == []
    finally:
        lock.close()


def test_set_takes_only_the_settable_parameters_with_values_params_allows():
    assert control.check_command("set", "max_replica_lag", "256MB") == ("max_replica_lag", "256MB")
    assert control.check_command("set", "batch_pause_ms", "50") == ("batch_pause_ms", "50")
    assert control.typed("max_batch_size", "500") == 500 and control.typed("batch_pause_ms", "0") == 0
    for name, value, words in [("batch_size", "5", "allowed: batch_pause_ms, target_batch_ms, max_batch_size, "
                                                     "max_replica_lag"),
                               ("max_replica_lag", "64XB", "allowed: a size"),
                               ("target_batch_ms", "0", "allowed: a number > 0"),
                               ("max_batch_size", "1.5", "allowed: an integer >= 1")]:
        with pytest.raises(RunbookError, match=words):
            control.check_command("set", name, value)

    result = cli("control", "set", "batch_pause_ms", "-5", url="postgresql://x@127.0.0.1:1/x")
    assert result.returncode == 2 and "batch_pause_ms = -5" in result.stderr and "allowed: a number >= 0" in result.stderr
    assert "Nothing was sent." in result.stderr and "cannot connect" not in result.stderr, "checked before connecting"
    result = cli("control", "set", "lock_timeout", "1s", url="postgresql://x@127.0.0.1:1/x")
    assert result.returncode == 2 and "'lock_timeout' cannot be set on a running backfill" in result.stderr


# --------------------------------------------------------------------------- the CLI
def test_status_reads_the_progress_a_run_reports(database):
    result = cli("status", url=database)
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    assert "no run is active on " in result.stdout and "no backfill has run on this database" in result.stdout

    unreachable = cli("status", url="postgresql://nobody:secret@127.0.0.1:1/nowhere")
    assert unreachable.returncode == 2 and "cannot connect to nobody@127.0.0.1:1/nowhere" in unreachable.stderr
    assert "secret" not in unreachable.stderr + unreachable.stdout

    lock = runlock.acquire(database, "20261128T101500Z-1a2b3c")
    try:
        result = cli("status", url=database)       # a run, its backfill not started
        assert result.returncode == 0, result.stdout + result.stderr
        assert "run 20261128T101500Z-1a2b3c is active" in result.stdout
        assert "Its backfill has not reported progress yet" in result.stdout

        conn = db.connect(database)
        control.ensure(conn)
        live = control.Live(conn, "20261128T101500Z-1a2b3c")
        report(live, "Connection", 80, 80, "done")
        report(live, "MetricDaily", 12000, 48000, "paused")
        assert cli("control", "pause", url=database).returncode == 0
        result = cli("status", url=database)
    finally:
        lock.close()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"run 20261128T101500Z-1a2b3c is active on {db.describe(database)}: "
                               f"pid {os.getpid()} on host {socket.gethostname()}, since ")
    assert lines[1].split() == ["table", "rows", "done", "/", "total", "%", "rows/s", "ETA", "batch", "workers", "state"]
    assert lines[2].split() == ["Connection", "80", "/", "80", "100.0%", "-", "-", "1,000", "1", "done"]
    assert lines[3].split() == ["MetricDaily", "12,000", "/", "48,000", "25.0%", "-", "-", "1,000", "1", "paused"]
    assert lines[4].startswith("last report ")
    assert lines[5].startswith("pending: pause, sent ") and "the backfill applies it between batches" in lines[5]

    report(live, "MetricDaily", 24000, 48000)        # still reporting after its lock is gone: not active
    result = cli("status", url=database)
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines()[1].startswith(
        f"Last known state: run 20261128T101500Z-1a2b3c, on host {socket.gethostname()} (pid {os.getpid()}), "
        "last updated ")
    assert result.stdout.splitlines()[4].split() == ["MetricDaily", "24,000", "/", "48,000", "50.0%", "500", "48s",
                                                     "1,000", "1", "running"], "rows/s and ETA while running"
    assert "The run ended before every table was done" in result.stdout
    conn.close()


def test_control_says_what_it_sent_to_which_run_or_refuses(database):
    result = cli("control", "pause", url=database)
    assert result.returncode == 1 and result.stdout == ""
    assert "no run is active on " in result.stderr and "nothing was sent" in result.stderr
    assert query(database, "SELECT to_regclass('tenancy_runbook.commands')") == [(None,)], "nothing written"

    lock = runlock.acquire(database, "20261128T101500Z-1a2b3c")
    try:
        result = cli("control", "set", "max_replica_lag", "256MB", url=database)
        aborted = cli("control", "abort", url=database)
    finally:
        lock.close()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "sent: set max_replica_lag 256MB"
    assert lines[1] == f"  to run 20261128T101500Z-1a2b3c (pid {os.getpid()} on host {socket.gethostname()})"
    assert lines[2].startswith(f"  by {query(database, 'SELECT session_user')[0][0]} from {socket.gethostname()}")
    assert "applies it between batches" in result.stdout and "has not started yet" in result.stdout
    assert aborted.returncode == 0 and "the stage ends with a gate failure (exit 1)" in aborted.stdout
    assert "running the stage again resumes" in aborted.stdout
    assert commands(database) == [("set", "max_replica_lag", "256MB", False), ("abort", None, None, False)]


# --------------------------------------------------------------------------- the runner's record
# app -> after on_collision=quarantine on one colliding pair: its quarantine tables in restore
# order, the table whose unique key collided with how many of its rows lost, and the table of rows
# that went with the losers (None: nothing references the losers)
QUARANTINED = {"datahub": (("Connection", "Insight", "MetricDaily"), ("Connection", 2), "MetricDaily"),
               "projects": (("Label",), ("Label", 3), None)}


def test_the_runner_records_actions_applied_and_not_and_throttling(database):
    lock = runlock.acquire(database, "run-r")
    try:
        record = control.RunRecord(lock)
        assert record.stage() == {} and record.run() == {}, "no control tables: nothing"
        conn = db.connect(database)
        control.ensure(conn)
        live = control.Live(conn, "run-r")
        with db.connect(database) as sender:
            control.send(sender, "set", "batch_pause_ms", "20", host="ops")
            [command] = live.poll()
            live.applied(command, "batch_pause_ms 0.0 -> 20.0", table="MetricDaily")
            live.event("throttle", "MetricDaily", {"signal": "replica_lag", "value": 80 * 2**20, "limit": 64 * 2**20,
                                                   "seconds": 2.5}, 2.5)
            live.event("throttle", "Insight", {"signal": "autovacuum", "value": "regular", "seconds": 1.0}, 1.0)
            during = record.stage()
            control.send(sender, "pause", host="ops")      # never taken
        assert [a["outcome"] for a in during["control"]] == ["batch_pause_ms 0.0 -> 20.0"]
        assert during["throttle"] == {"episodes": 2, "seconds": 3.5, "by_signal": {"replica_lag": 2.5, "autovacuum": 1.0},
                                      "replica_lag_max_bytes": 80 * 2**20}
        assert record.stage() == {}, "per stage: only what happened since"
        whole = record.run()
        assert [(a["action"], a["applied_at"] is not None) for a in whole["control"]] == [("set", True), ("pause", False)]
        assert whole["control"][1]["outcome"].startswith("not applied")
        assert whole["throttle"]["episodes"] == 2
        assert list(live.actions_frame()["outcome"]) == ["batch_pause_ms 0.0 -> 20.0"]
        assert control.throttle_line(whole["throttle"]) == ("throttled 3.5 s in 2 episodes (replica_lag 2.5 s, "
                                                            "autovacuum 1.0 s); replica lag up to 80MB")
        assert control.action_line(whole["control"][0]).startswith("control: set batch_pause_ms 20 by ")
        conn.close()
    finally:
        lock.close()


def test_a_rollback_says_how_many_rows_it_restored(app, seeded, tmp_path):
    url = seeded(shared_pairs=3, collisions=1)
    first = run_runbook(url, tmp_path / "quarantined", "--to", "20_backfill", "-p", "on_collision", "quarantine")
    assert first.returncode == 0, first.stdout + first.stderr
    tables, (losing, losers), dependent = QUARANTINED[app.name]
    assert query(url, "SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables WHERE schemaname = %s",
                 [app.quarantine]) == [(sorted(tables),)]
    quarantined = {t: query(url, "SELECT count(*)::int FROM {s}.{t}", s=app.quarantine, t=t)[0][0] for t in tables}
    assert quarantined[losing] == losers and (dependent is None or quarantined[dependent] > 0)
    result = run_runbook(url, tmp_path / "rollback", "-p", "confirm", "true", "-p", "restore_quarantine", "true",
                         runbook="runbooks/rollback.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("90_rollback                  ok")
    assert lines[1] == "    made nullable: nothing (already nullable)"
    assert lines[2] == "    rows restored: " + ", ".join(f"{t} {n}" for t, n in quarantined.items() if n), result.stdout
    manifest = json.loads((tmp_path / "rollback" / "manifest.json").read_text())
    assert {t: n for t, n in manifest["stages"][0]["summary"]["rows_restored"].items() if n} == \
        {t: n for t, n in quarantined.items() if n}


# --------------------------------------------------------------------------- the terminal
PROBE = """\
import sys, time
from tqdm import tqdm
from tenancy_runbook import nb
terminal = nb.terminal()
print("terminal:", terminal is not None)
bar = tqdm(total=20, desc="  PROBE-BAR", file=terminal, mininterval=0, leave=False, disable=terminal is None)
for _ in range(20):
    bar.update(1)
    time.sleep(0.01)
bar.close()
print("written to fd 2", file=sys.__stderr__, flush=True)
nb.summary(rows_moved={"Connection": 2, "Insight": 0})
"""
RUN_PROBE = """\
import sys
from pathlib import Path
from tenancy_runbook import runner
from tenancy_runbook.runbook import Runbook, Stage
notebook, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
stage = Stage(notebook.stem, notebook, {}, {})
[result] = runner.run(Runbook(notebook, "probe", [stage], ""), [stage], run_dir)
print("stage", result.status, result.summary, result.message)
"""


def run_on_a_terminal(args: list, env: dict, timeout: float = 240) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdin, stdout and stderr (as an operator's
    shell does); its exit code and everything the terminal received."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env, start_new_session=True)
    os.close(slave)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:        # EIO: every process holding the terminal has ended
                break
            if not chunk:
                break
            received += chunk
        elif proc.poll() is not None:
            break
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    os.close(master)
    return proc.wait(), received.decode(errors="replace")


def production_env(url: str) -> dict:
    """The environment an operator's shell gives: without pytest's marker, under which ipykernel
    leaves file descriptors 1 and 2 alone (in production it puts what they get into the notebook)."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}, "DATABASE_URL": url}


def notebook_outputs(path) -> str:
    return json.dumps([o for c in json.loads(path.read_text())["cells"] for o in c.get("outputs", [])])


def test_a_kernel_draws_on_the_runners_terminal_and_not_into_the_notebook(database, tmp_path):
    notebook = tmp_path / "probe.ipynb"
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, notebook)
    script = tmp_path / "run_probe.py"
    script.write_text(RUN_PROBE)

    code, screen = run_on_a_terminal([sys.executable, str(script), str(notebook), str(tmp_path / "tty")],
                                     production_env(database))
    assert code == 0, screen
    assert "PROBE-BAR: 100%" in screen and "20/20" in screen, screen
    assert "stage ok {'rows_moved': {'Connection': 2, 'Insight': 0}}" in screen
    assert "KeyboardInterrupt" not in screen and "IPKernelApp" not in screen, screen
    outputs = notebook_outputs(tmp_path / "tty" / "probe.ipynb")
    assert "terminal: True" in outputs and "PROBE-BAR" not in outputs, "the terminal's bar stays out of the notebook"
    assert "written to fd 2" in outputs, "what reaches the kernel's fd 2 goes into the notebook (ipykernel)"
    assert "rows moved: Connection 2" in outputs, "the summary's text line"

    piped = subprocess.run([sys.executable, str(script), str(notebook), str(tmp_path / "pipe")], cwd=ROOT,
                           env=production_env(database), capture_output=True, text=True, timeout=240)
    assert piped.returncode == 0, piped.stderr
    assert "PROBE-BAR" not in piped.stdout + piped.stderr
    assert "terminal: False" in notebook_outputs(tmp_path / "pipe" / "probe.ipynb"), "no terminal: no bar"


def test_tenancy_runbook_run_shows_the_backfill_progress_on_its_terminal(datahub, tmp_path):
    # on Data Hub only: the bar is the runner's terminal's, whatever the table (too slow to double)
    url = datahub(metric_days=60)
    code, screen = run_on_a_terminal([sys.executable, "-m", "tenancy_runbook", "run", "runbooks/datahub-tenancy.yaml",
                                      "--run-dir", str(tmp_path / "run"), "--to", "20_backfill"], production_env(url))
    assert code == 0, screen
    assert re.search(r"\r  MetricDaily: +\d+%\|.*\| \d+/2880 \[", screen), screen
    assert "20_backfill                  ok" in screen
    assert "IPKernelApp" not in screen and "KeyboardInterrupt" not in screen, screen
    stderr = [o for c in json.loads((tmp_path / "run" / "20_backfill.ipynb").read_text())["cells"]
              for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not any("MetricDaily" in "".join(o["text"]) for o in stderr), "the terminal's bar is not in the notebook"


def test_a_kernels_log_is_kept_without_its_interrupt_lines(capfd):
    read, write = os.pipe()
    os.write(write, b"[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n"
                    b"a real complaint\n[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel\n"
                    b"\rredrawn in place\r")
    os.close(write)
    log = runner._KernelLog()
    log.read_from(os.fdopen(read, "rb"))
    assert log.text() == "a real complaint\nredrawn in place"
    assert capfd.readouterr().err == "", "nothing of it reaches the runner's stderr"
    log.clear()
    assert log.text() == ""


DYING = """\
import os
os.write(2, b"PROBE-COMPLAINT from the kernel\\n")
if {die}:
    os._exit(3)
"""


@pytest.mark.parametrize("die", [False, True], ids=["passes", "dies"])
def test_a_kernels_stderr_is_shown_only_for_a_stage_that_errors(database, tmp_path, die):
    """What reaches a kernel's fd 2 outside a cell's capture (under pytest, ipykernel leaves fd 2
    alone: the case of a kernel's start-up and shutdown in production) stays off the terminal for
    a stage that passes (a zmq teardown traceback once failed a run's clean-output check), and
    is shown under a stage whose kernel died."""
    notebook = tmp_path / "probe.ipynb"
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(DYING.format(die=die))])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, notebook)
    script = tmp_path / "run_probe.py"
    script.write_text(RUN_PROBE + "print('kernel log:', result.kernel_log)\n")
    done = subprocess.run([sys.executable, str(script), str(notebook), str(tmp_path / "run")], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": database}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PROBE-COMPLAINT" not in done.stderr, done.stderr
    if die:
        assert "stage error" in done.stdout, done.stdout
        assert "kernel log: PROBE-COMPLAINT from the kernel" in done.stdout, done.stdout
    else:
        assert "stage ok" in done.stdout and "PROBE-COMPLAINT" not in done.stdout, done.stdout


def test_a_kernel_is_not_interrupted_when_it_is_shut_down(tmp_path, monkeypatch):
    """jupyter_client sends SIGINT before every shutdown: a kernel still in a handler logs it."""
    monkeypatch.chdir(tmp_path)

    def signals_sent(manager_class) -> list:
        sent = []

        class Spy(manager_class):
            async def _async_signal_kernel(self, signum):
                sent.append(signum)
                await super()._async_signal_kernel(signum)

        async def start_and_stop():
            manager = Spy(kernel_name=runner.KERNEL)
            await manager.start_kernel()
            await manager.shutdown_kernel()
        asyncio.run(start_and_stop())
        return sent

    from jupyter_client.manager import AsyncKernelManager
    assert signal.SIGINT in signals_sent(AsyncKernelManager), "jupyter_client's own manager does"
    assert signal.SIGINT not in signals_sent(runner.LocalKernelManager)


def test_the_terminal_is_the_runners_stderr_device():
    master, slave = pty.openpty()
    try:
        with os.fdopen(os.dup(slave), "w") as stream:
            assert runner.terminal_path(stream) == os.ttyname(slave)
        with open(os.devnull, "w") as stream:
            assert runner.terminal_path(stream) == ""
    finally:
        os.close(master)
        os.close(slave)


# --------------------------------------------------------------------------- end to end
def wait_for_status(url: str, words: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = cli("status", url=url)
        if words in result.stdout:
            return result.stdout
        time.sleep(0.2)
    raise AssertionError(f"status never showed {words!r}: {result.stdout}{result.stderr}")


def placed(url: str) -> int:
    return query(url, 'SELECT count("workspaceId") FROM "MetricDaily"')[0][0]


def test_an_operator_pauses_sets_and_aborts_a_running_backfill_from_another_process(datahub, tmp_path):
    # on Data Hub only: the commands reach the backfill whatever its tables (too slow to double)
    url = datahub(metric_days=300)                       # 14,400 MetricDaily rows
    columns = run_runbook(url, tmp_path / "columns", "--to", "10_add_workspace_columns")
    assert columns.returncode == 0, columns.stdout + columns.stderr
    run_dir = tmp_path / "steered"
    proc = start_run(url, run_dir, "--from", "20_backfill", "--to", "20_backfill", "-p", "batch_size", "20",
                     "-p", "min_batch_size", "10", "-p", "max_batch_size", "20", "-p", "batch_pause_ms", "100")
    wait_for_status(url, f"run {run_dir.name} is active")
    paused = cli("control", "pause", url=url)            # sent early: taken at the backfill's first batch
    assert paused.returncode == 0 and f"to run {run_dir.name} (pid {proc.pid} " in paused.stdout, paused.stderr
    screen = wait_for_status(url, " paused")
    assert f"run {run_dir.name} is active" in screen, screen
    before = placed(url)
    time.sleep(1.5)                                      # several batches' time: none runs while paused
    assert placed(url) == before, "paused: no batch ran"

    assert cli("control", "set", "max_batch_size", "40", url=url).returncode == 0
    assert cli("control", "resume", url=url).returncode == 0
    wait_for(lambda: placed(url) > before, "the backfill to go on after resume")
    assert cli("control", "pause", url=url).returncode == 0
    wait_for_status(url, " paused")
    assert cli("control", "abort", url=url).returncode == 0
    stdout, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 1, stdout + stderr
    assert "20_backfill                  gate failed" in stdout and "Traceback" not in stdout + stderr
    assert "aborted by `tenancy-runbook control abort`" in stdout, stdout
    actions = [line.split(" by ")[0].removeprefix("    control: ") for line in stdout.splitlines()
               if line.startswith("    control: ")]
    assert actions == ["pause", "set max_batch_size 40", "resume", "pause", "abort"], stdout
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [a["action"] for a in manifest["control"]] == ["pause", "set", "resume", "pause", "abort"]
    assert all(a["by_user"] and a["by_host"].startswith(socket.gethostname()) and a["outcome"] and a["applied_at"]
               for a in manifest["control"]), manifest["control"]
    assert manifest["stages"][0]["control"] == manifest["control"]
    ended = cli("status", url=url)
    assert ended.returncode == 1 and " aborted" in ended.stdout, ended.stdout

    done, total = query(url, 'SELECT count("workspaceId"), count(*) FROM "MetricDaily"')[0]
    assert 0 < done < total, "aborted while the backfill was under way"
    resumed = run_runbook(url, tmp_path / "resumed", "--from", "20_backfill", "--to", "20_backfill")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert query(url, 'SELECT count(*) FROM "MetricDaily" WHERE "workspaceId" IS NULL') == [(0,)]

