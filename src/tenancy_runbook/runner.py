"""Runs stages: one papermill execution per stage, in order, stopping at the first failure.

The runner only runs. It checks nothing about the data itself (the notebooks' gates do)
and prints nothing (the CLI reports); it hands each finished stage to a callback.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import papermill
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError
from traitlets import default

from . import archive, db
from .paths import OUTPUTS_DIR
from .runbook import Runbook, Stage
from .stages.backfill import PROGRESS_ENV

GATE_ERRORS = {"AssertionError", "GateFailed"}
KERNEL = "python3"


class LocalKernelManager(AsyncKernelManager):
    """Kernels talk over local IPC sockets rather than TCP ports on 127.0.0.1.

    Each kernel gets socket paths of its own: jupyter_client's default ("kernel-ipc-<n>" in
    the working directory, n counted up from 1) lets two runs started at once bind the same
    sockets and read each other's messages.
    """

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        base = Path(tempfile.gettempdir()) / "tenancy-runbook-kernels"
        base.mkdir(mode=0o700, exist_ok=True)
        return str(base / uuid.uuid4().hex)


@dataclass
class StageResult:
    name: str
    status: str          # ok | gate failed | error
    seconds: float
    output: Path
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def new_run_dir(base: Path = OUTPUTS_DIR) -> Path:
    """outputs/<UTC timestamp>-<short id>/ (created by run(), once the database answers)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(base) / f"{stamp}-{uuid.uuid4().hex[:6]}"


def run(book: Runbook, stages: list[Stage], run_dir: Path,
        on_stage: Callable[[StageResult], None] = lambda result: None) -> list[StageResult]:
    """Execute ``stages`` of ``book`` into ``run_dir``; stop after the first that fails.

    Each stage leaves its executed notebook and an HTML export; the run ends (whatever way it
    ends) with manifest.json, which archive.verify() checks later.
    """
    url = db.database_url()
    with db.connect(url, read_only=True) as conn:   # reachable, or a RunbookError before any stage
        target = archive.database(conn, url)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ[PROGRESS_ENV] = "1"      # kernels also draw their progress bars on our terminal
    record = {"run_id": run_dir.name,
              "runbook": {"path": str(book.path), "name": book.name, "sha256": book.sha256},
              "started_at": archive.now(), "operator": archive.operator(), "suite": archive.suite(),
              "database": target, "stages": []}
    results = []
    try:
        for stage in stages:
            started = archive.now()
            result = execute(stage, run_dir, run_dir.name)
            results.append(result)
            record["stages"].append(_stage_record(stage, result, started))
            on_stage(result)
            if not result.ok:
                break
    finally:
        for stage in stages[len(results):]:
            record["stages"].append({"name": stage.name, "result": "not run",
                                     "parameters": archive.redact_parameters(stage.parameters)})
        record["ended_at"] = archive.now()
        record["result"] = ("passed" if results and len(results) == len(stages) and all(r.ok for r in results)
                            else "failed" if results and not results[-1].ok else "interrupted")
        archive.write_manifest(run_dir, record)
    return results


def _stage_record(stage: Stage, result: "StageResult", started: str) -> dict:
    html = None
    if result.output.exists():
        html = archive.export_html(result.output).name
    return {"name": stage.name, "notebook": result.output.name if result.output.exists() else None,
            "html": html, "parameters": archive.redact_parameters(stage.parameters),
            "started_at": started, "ended_at": archive.now(), "seconds": round(result.seconds, 3),
            "result": result.status, "message": result.message, "gates": archive.gates(result.output)}


def execute(stage: Stage, run_dir: Path, run_id: str) -> StageResult:
    """One stage; ``run_id`` goes to every notebook that declares it (quarantine, records)."""
    output = run_dir / f"{stage.name}.ipynb"
    parameters = dict(stage.parameters)
    if "run_id" in stage.declared:
        parameters["run_id"] = run_id
    started = time.monotonic()
    try:
        papermill.execute_notebook(
            str(stage.notebook), str(output), parameters=parameters,
            kernel_name=KERNEL, kernel_manager_class=LocalKernelManager, cwd=str(stage.notebook.parent),
            progress_bar=False, log_output=False)
    except PapermillExecutionError as exc:
        gate = exc.ename in GATE_ERRORS
        message = db.redact(exc.evalue if gate else f"{exc.ename}: {exc.evalue}")
        return StageResult(stage.name, "gate failed" if gate else "error",
                           time.monotonic() - started, output, message)
    except Exception as exc:  # the kernel died, the notebook could not be read or written
        return StageResult(stage.name, "error", time.monotonic() - started, output,
                           db.redact(f"{type(exc).__name__}: {exc}"))
    return StageResult(stage.name, "ok", time.monotonic() - started, output)
