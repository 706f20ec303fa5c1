"""Runs stages: one papermill execution per stage, in order, stopping at the first failure.

The runner only runs. It checks nothing about the data itself (the notebooks' gates do)
and prints nothing (the CLI reports); it hands each finished stage to a callback.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import papermill
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError

from . import db
from .paths import OUTPUTS_DIR
from .runbook import Stage
from .stages.backfill import PROGRESS_ENV

GATE_ERRORS = {"AssertionError", "GateFailed"}
KERNEL = "python3"


class LocalKernelManager(AsyncKernelManager):
    """Kernels talk over local IPC sockets rather than TCP ports on 127.0.0.1."""

    def _transport_default(self) -> str:
        return "ipc"


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


def run(stages: list[Stage], run_dir: Path,
        on_stage: Callable[[StageResult], None] = lambda result: None) -> list[StageResult]:
    """Execute ``stages`` into ``run_dir``; stop after the first that fails."""
    db.connect().close()   # DATABASE_URL set and reachable, or a RunbookError before any stage
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ[PROGRESS_ENV] = "1"      # kernels also draw their progress bars on our terminal
    results = []
    for stage in stages:
        result = execute(stage, run_dir, run_dir.name)
        results.append(result)
        on_stage(result)
        if not result.ok:
            break
    return results


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
