"""Runs stages: one papermill execution per stage, in order, stopping at the first failure.

The runner only runs. It checks nothing about the data itself (the notebooks' gates do)
and prints nothing (the CLI reports); it hands each finished stage to a callback.

One run at a time per database: it holds the runbook's advisory lock (runlock.py) for the
whole run. SIGINT and SIGTERM stop a run within seconds: each stage executes in a worker
thread, so the main thread keeps the signals (nbclient would otherwise install handlers of
its own); it interrupts the kernel (psycopg cancels its statement on KeyboardInterrupt),
cancels whatever the run's sessions still run on the server, kills a kernel that has not
ended after a short grace, and archives the run as ``interrupted``. A second signal ends it
at once.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellExecutionError
from papermill.exceptions import PapermillExecutionError
from traitlets import default

from . import archive, control, db, interactive, pages, runlock, seal
from .errors import RunbookError
from .paths import OUTPUTS_DIR, PROGRESS_ENV, RUN_DIR_ENV, SPEC_ENV
from .runbook import Runbook, Stage

GATE_ERRORS = {"AssertionError", "GateFailed"}
KERNEL = "python3"
TICK_S = 0.1          # how often the main thread looks at a running stage and at signals
CANCEL_AFTER_S = 0.5  # after the kernel's interrupt, cancel what the run's sessions still run
GRACE_S = 5.0         # then kill a kernel that has not ended
GIVE_UP_S = 10.0      # and stop waiting for the stage's thread
# A stage error meaning the connection to the server went away (restart, termination, failover).
LOST_ERRORS = {"OperationalError", "AdminShutdown", "CrashShutdown", "CannotConnectNow",
               "ConnectionException", "ConnectionFailure", "ConnectionDoesNotExist", "IdleSessionTimeout"}
LOST_TEXTS = ("terminating connection", "server closed the connection", "connection is closed",
              "connection is lost", "connection to server", "cannot connect to", "consuming input failed",
              "ssl syscall error", "eof detected", "connection reset")


class _Kernels:
    """The kernels this process started, by process group (each kernel is a session leader)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.groups: set[int] = set()
        self.stopping = False

    def started(self, pid: int) -> None:
        with self._lock:
            self.groups.add(pid)
            stopping = self.stopping
        if stopping:                 # started after the stop began: it runs nothing
            _signal_group(pid, signal.SIGKILL)

    def signal(self, signum: int) -> None:
        for pid in list(self.groups):
            _signal_group(pid, signum)

    def alive(self) -> list[int]:
        """Kernels still running (ended ones are forgotten, and reaped)."""
        alive = []
        for pid in list(self.groups):
            try:
                done = os.waitpid(pid, os.WNOHANG)[0] == pid
            except ChildProcessError:      # already reaped by jupyter_client
                done = True
            if done:
                self.groups.discard(pid)
            else:
                alive.append(pid)
        return alive


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


KERNELS = _Kernels()


class LocalKernelManager(AsyncKernelManager):
    """Kernels talk over local IPC sockets rather than TCP ports on 127.0.0.1.

    Each kernel gets socket paths of its own: jupyter_client's default ("kernel-ipc-<n>" in
    the working directory, n counted up from 1) lets two runs started at once bind the same
    sockets and read each other's messages. Every kernel started is registered in KERNELS,
    so the main thread can interrupt or kill it.
    """

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        base = Path(tempfile.gettempdir()) / "tenancy-runbook-kernels"
        base.mkdir(mode=0o700, exist_ok=True)
        return str(base / uuid.uuid4().hex)

    async def _async_interrupt_kernel(self) -> None:
        """jupyter_client interrupts a kernel (SIGINT) before every shutdown; a kernel still in a
        message handler then logs "KeyboardInterrupt caught in kernel." onto the terminal. The
        stage is over by then, so a shutdown does not interrupt (a signal to the run does,
        through KERNELS)."""
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

    async def _async_launch_kernel(self, kernel_cmd, **kw) -> None:
        kw["stderr"] = subprocess.PIPE     # kept by KERNEL_LOG, shown only for a stage that errors
        await super()._async_launch_kernel(kernel_cmd, **kw)
        KERNELS.started(self.provisioner.pgid or self.provisioner.pid)
        KERNEL_LOG.read_from(self.provisioner.process.stderr)


# The kernel's own log lines about being interrupted (jupyter_client's SIGINT before a shutdown,
# the runner's on a signal): machinery, not the runbook's, and alarming in a CI log.
KERNEL_NOISE = re.compile(rb"^\[IPKernelApp\] \w+ \| KeyboardInterrupt caught in kernel\.?\r?$")
KERNEL_LOG_BYTES = 16384   # the tail of a kernel's stderr kept for a stage that errors


class _KernelLog:
    """What reaches a kernel's file descriptor 2 that is not a cell's output (a crash, a library's
    complaint, libzmq's teardown): kept, not shown. The terminal gets only the stage lines and
    the progress bar (which the kernel draws on the runner's terminal itself, PROGRESS_ENV); the
    tail is shown under a stage that errors (a kernel that died says why there), never for a
    stage that passed: a traceback from a kernel's shutdown looked like a failure in a CI log."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tail = b""
        self._readers: list[threading.Thread] = []

    def read_from(self, pipe) -> None:
        thread = threading.Thread(target=self._read, args=(pipe,), name="kernel stderr", daemon=True)
        with self._lock:
            self._readers.append(thread)
        thread.start()

    def _read(self, pipe) -> None:
        try:
            while chunk := os.read(pipe.fileno(), 65536):
                self.add(chunk)
        except OSError:
            pass
        finally:
            pipe.close()

    def add(self, chunk: bytes) -> None:
        with self._lock:
            self._tail = (self._tail + chunk)[-KERNEL_LOG_BYTES:]

    def clear(self) -> None:
        with self._lock:
            self._tail = b""
            self._readers = [t for t in self._readers if t.is_alive()]

    def text(self, wait_s: float = 1.0) -> str:
        """The tail so far, once the readers of kernels that ended have read all (up to
        ``wait_s``), without the interrupt log lines, the DSNs' passwords redacted."""
        deadline = time.monotonic() + wait_s
        for thread in list(self._readers):
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            lines = self._tail.replace(b"\r", b"\n").split(b"\n")
        kept = [line for line in lines if line.strip() and not KERNEL_NOISE.match(line)]
        return db.redact(b"\n".join(kept).decode("utf-8", "replace"))


KERNEL_LOG = _KernelLog()


@dataclass
class StageResult:
    name: str
    status: str          # ok | gate failed | error | interrupted
    seconds: float
    output: Path
    message: str = ""
    signal: int | None = None     # interrupted: by which signal
    kernel_log: str = ""          # error: the tail of the kernel's stderr (KERNEL_LOG)
    summary: dict = field(default_factory=dict)     # what the notebook gave nb.summary()
    control: list = field(default_factory=list)     # control actions applied during the stage
    throttle: dict | None = None                    # its waits for database health (control.throttle_summary)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Stop:
    """SIGINT / SIGTERM during a run: the first stops it within seconds, a second at once.

    The handlers only note the signal and signal the kernels (SIGINT, then SIGKILL on a
    second signal); the main thread does the rest between ticks.
    """

    def __init__(self):
        self.signum: int | None = None
        self.at = 0.0
        self.hard = False
        self._saved = {}

    def __enter__(self) -> "_Stop":
        KERNELS.stopping = False
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum, self.at = signum, time.monotonic()
            KERNELS.stopping = True
            KERNELS.signal(signal.SIGINT)
        else:
            self.hard = True
            KERNELS.signal(signal.SIGKILL)
            logging.disable(logging.CRITICAL)   # nbclient would log the kernel's death: one line only

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


def new_run_dir(base: Path = OUTPUTS_DIR) -> Path:
    """outputs/<UTC timestamp>-<short id>/ (created by run(), once the lock is held)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(base) / f"{stamp}-{uuid.uuid4().hex[:6]}"


def check_run_dir(run_dir: Path) -> None:
    """An archived run is never overwritten: ``run_dir`` must not exist, or be empty."""
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        what = "holds an archived run" if (run_dir / archive.MANIFEST).exists() else "is not empty"
        raise RunbookError(f"the run directory {run_dir} {what}: an archived run is never overwritten. "
                           "Name a new directory with --run-dir, or leave --run-dir out "
                           "(outputs/<UTC timestamp>-<short id>/). Nothing was done.")


def _make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True)
    except FileExistsError:
        check_run_dir(run_dir)       # created meanwhile by someone else: still empty?


def run(book: Runbook, stages: list[Stage], run_dir: Path,
        on_stage: Callable[[StageResult], None] = lambda result: None,
        sign_key: Path | None = None) -> list[StageResult]:
    """Execute ``stages`` of ``book`` into ``run_dir``; stop after the first that fails.

    Each stage leaves its executed notebook and an HTML export; the run ends (whatever way it
    ends, a signal included) with manifest.json, which archive.verify() checks later. Before
    anything: the run directory is new or empty, the connection is direct (no transaction
    pooler) and no other run holds the database (RunbookError otherwise, nothing written).
    With ``sign_key`` (a private SSH key, checked first) the manifest is signed (seal.py); then
    the run's index.html is written from it.
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    key = seal.check_key(sign_key) if sign_key else None
    url = db.database_url()
    run_id = run_dir.name
    with _Stop() as stop:
        db.require_direct(url)
        lock = runlock.acquire(url, run_id)
        saved = {k: os.environ.get(k) for k in (db.RUN_ID_ENV, PROGRESS_ENV, RUN_DIR_ENV, SPEC_ENV)}
        os.environ[db.RUN_ID_ENV] = run_id   # the kernels' connections carry it (and find the lock theirs)
        os.environ[RUN_DIR_ENV] = str(run_dir.resolve())   # where a stage leaves a file for the team
        if book.spec is not None:
            os.environ[SPEC_ENV] = str(book.spec.path)     # the tenancy spec the stages follow
        # kernels also draw their progress bars on our terminal, when it is one (nb.terminal)
        os.environ[PROGRESS_ENV] = terminal_path()
        try:
            return _run(book, stages, run_dir, url, lock, stop, on_stage, sign_key, key)
        finally:
            lock.close()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def terminal_path(stream=None) -> str:
    """The device of our stderr when it is a terminal ("" otherwise): the kernels open it to draw
    their progress bars (their own stderr reaches the notebook, not us)."""
    stream = sys.stderr if stream is None else stream
    try:
        return os.ttyname(stream.fileno()) if stream is not None and stream.isatty() else ""
    except (OSError, ValueError, AttributeError):
        return ""


def _run(book, stages, run_dir, url, lock, stop, on_stage, sign_key, key) -> list[StageResult]:
    target = archive.database(lock.conn, url)
    _make_run_dir(run_dir)
    record = {"run_id": run_dir.name,
              "runbook": {"path": str(book.path), "name": book.name, "sha256": book.sha256},
              "spec": None if book.spec is None else {"path": str(book.spec.path), "name": book.spec.name,
                                                      "sha256": book.spec.sha256},
              "started_at": archive.now(), "operator": archive.operator(), "suite": archive.suite(),
              "ci": archive.ci_context(), "database": target, "index": {"file": pages.INDEX, "format": pages.FORMAT}, "stages": []}
    if key:
        record["signature"] = {"file": archive.MANIFEST + seal.SIGNATURE, "namespace": seal.NAMESPACE, "key": key}
    # writes made outside the runner (a stage run alone with confirm=True) since the previous run
    record["interactive_writes"] = interactive.for_manifest(lock.conn, run_dir, target, record["started_at"])
    results = []
    evidence = control.RunRecord(lock)
    try:
        for stage in stages:
            started = archive.now()
            if stop.signum:
                result = StageResult(stage.name, "interrupted", 0.0, run_dir / f"{stage.name}.ipynb",
                                     f"interrupted by {stop.name} before it started", stop.signum)
            else:
                lock.ensure()
                result = _watched(stage, run_dir, lock, stop)
            results.append(result)
            _add_evidence(result, evidence, record, stop)
            # an interrupted stage's HTML export is left out: nbconvert takes seconds, and a stop
            # must be quick (the notebook is archived; `jupyter nbconvert --to html` makes it later)
            html = result.status != "interrupted" and not stop.hard
            record["stages"].append(_stage_record(stage, result, started, record if html else None))
            on_stage(result)
            if not result.ok:
                break
    except BaseException as exc:
        record["error"] = db.redact(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if stop.signum:
            _end_run_processes(lock, stop)
        for stage in stages[len(results):]:
            record["stages"].append({"name": stage.name, "result": "not run",
                                     "parameters": archive.redact_parameters(stage.parameters)})
        if not stop.hard:
            record.update(_quietly(evidence.run) or {})
        record["ended_at"] = archive.now()
        interrupted = bool(results) and results[-1].status == "interrupted"
        record["result"] = ("interrupted" if interrupted
                            else "passed" if len(results) == len(stages) and all(r.ok for r in results)
                            else "failed")
        if interrupted:
            record["interrupted"] = {"signal": stop.name, "stage": results[-1].name, "at": archive.now()}
        manifest = archive.write_manifest(run_dir, record)
        try:
            if sign_key:
                seal.sign(manifest, sign_key)
        finally:
            pages.write_index(run_dir, seal.described(manifest))
    return results


def _watched(stage: Stage, run_dir: Path, lock: runlock.RunLock, stop: _Stop) -> StageResult:
    """execute() in a worker thread, the main thread watching for a signal."""
    box: dict = {}
    started = time.monotonic()
    thread = threading.Thread(target=lambda: box.update(result=execute(stage, run_dir, run_dir.name)),
                              name=f"stage {stage.name}", daemon=True)
    thread.start()
    cancelled = killed = False
    while thread.is_alive():
        thread.join(TICK_S)
        if stop.signum is None or not thread.is_alive():
            continue
        if stop.hard:                               # at once: the handler killed the kernels;
            thread.join(1.0)                        # papermill saves what the notebook holds
            break
        elapsed = time.monotonic() - stop.at
        if not cancelled and elapsed >= CANCEL_AFTER_S:
            _quietly(lock.stop_backends)
            cancelled = True
        if not killed and elapsed >= GRACE_S:
            KERNELS.signal(signal.SIGKILL)
            killed = True
        if elapsed >= GIVE_UP_S:
            break
    if not thread.is_alive():
        KERNELS.alive()                             # forget (and reap) the kernels that ended
    output = run_dir / f"{stage.name}.ipynb"
    result = box.get("result") or StageResult(stage.name, "error", time.monotonic() - started, output,
                                              "the stage did not end")
    if stop.signum:
        return StageResult(stage.name, "interrupted", result.seconds, output,
                           f"interrupted by {stop.name}", stop.signum)
    return result


def _end_run_processes(lock: runlock.RunLock, stop: _Stop) -> None:
    """After a signal: no kernel left, and no session of the run left on the server."""
    if KERNELS.alive():
        KERNELS.signal(signal.SIGKILL)
    deadline = time.monotonic() + (1.0 if stop.hard else 3.0)
    while KERNELS.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    _quietly(lock.stop_backends, terminate=True)
    while time.monotonic() < deadline and _quietly(lock.run_backends):
        time.sleep(0.05)


def _quietly(action, *args, **kwargs):
    """Stopping goes on whatever the server says (it may be what went away)."""
    try:
        return action(*args, **kwargs)
    except Exception:   # noqa: BLE001 - a lost lock session must not hide the interruption
        return None


def _add_evidence(result: StageResult, evidence: control.RunRecord, record: dict, stop: _Stop) -> None:
    """The stage's summary (nb.summary) from its notebook, and from the database what control
    actions and throttling happened during it; the run's totals so far into ``record``."""
    result.summary = archive.summary(result.output)
    if stop.hard:
        return                  # at once: the run's record is what it is
    during = _quietly(evidence.stage) or {}
    result.control, result.throttle = during.get("control", []), during.get("throttle")
    record.update(evidence.so_far())


def _stage_record(stage: Stage, result: "StageResult", started: str, record: dict | None) -> dict:
    """The stage in the manifest; its HTML page (headed by ``record``'s run) unless ``record`` is None."""
    exists = result.output.exists()
    page = (pages.export_stage(result.output, pages.stage_facts(record, stage.name, started, result.status)).name
            if exists and record is not None else None)
    out = {"name": stage.name, "notebook": result.output.name if exists else None, "html": page,
           "parameters": archive.redact_parameters(stage.parameters),
           "started_at": started, "ended_at": archive.now(), "seconds": round(result.seconds, 3),
           "result": result.status, "message": result.message, "gates": archive.gates(result.output)}
    if result.summary:
        out["summary"] = result.summary
    if result.control:
        out["control"] = result.control
    if result.throttle:
        out["throttle"] = result.throttle
    return out


def execute(stage: Stage, run_dir: Path, run_id: str) -> StageResult:
    """One stage; ``run_id`` goes to every notebook that declares it (quarantine, records)."""
    output = run_dir / f"{stage.name}.ipynb"
    parameters = dict(stage.parameters)
    if "run_id" in stage.declared:
        parameters["run_id"] = run_id
    started = time.monotonic()
    KERNEL_LOG.clear()
    try:
        papermill.execute_notebook(
            str(stage.notebook), str(output), parameters=parameters,
            kernel_name=KERNEL, kernel_manager_class=LocalKernelManager, cwd=str(stage.notebook.parent),
            progress_bar=False, log_output=False, on_cell_execute=_unless_stopping)
    except PapermillExecutionError as exc:
        gate = exc.ename in GATE_ERRORS
        message = exc.evalue if gate else f"{exc.ename}: {exc.evalue}"
        if not gate and connection_lost(exc.ename, exc.evalue):
            message = lost_connection_message(message)
        return StageResult(stage.name, "gate failed" if gate else "error",
                           time.monotonic() - started, output, db.redact(message))
    except Exception as exc:  # the kernel died, the notebook could not be read or written
        return StageResult(stage.name, "error", time.monotonic() - started, output,
                           db.redact(f"{type(exc).__name__}: {exc}"), kernel_log=KERNEL_LOG.text())
    return StageResult(stage.name, "ok", time.monotonic() - started, output)


def _unless_stopping(cell, cell_index, **_) -> None:
    """nbclient's hook before each cell: once a signal came, no further cell starts (the kernel
    ignores an interrupt that reaches it between two cells). The cell says why it did not run."""
    if KERNELS.stopping:
        evalue = "not run: the run was stopped by a signal"
        cell.outputs = [nbformat.v4.new_output("error", ename="Interrupted", evalue=evalue, traceback=[])]
        raise CellExecutionError("", "Interrupted", evalue)


def connection_lost(ename: str, evalue: str) -> bool:
    """Did the stage fail because its connection to the server went away?"""
    text = (evalue or "").lower()
    return ename in LOST_ERRORS or any(t in text for t in LOST_TEXTS)


def lost_connection_message(error: str) -> str:
    return ("The run stopped: the connection to the database was lost (a server restart, a terminated "
            "session or a failover). Nothing is half-done that a re-run does not finish: each step is its "
            "own transaction, redone or skipped when found done. Run the same command again (with "
            f"--run-dir, name a new directory). The error: {error.strip()}")
