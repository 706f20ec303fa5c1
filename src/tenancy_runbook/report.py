"""What a run prints: a line per stage with what an operator must know of it, the run's end,
what to do next and the manifest's anchor. Both ``run`` (cli.py) and ``demo`` (demo.py) report
with it."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import archive, control

if TYPE_CHECKING:
    from .runner import StageResult


def print_stage(result: StageResult) -> None:
    """The runner's ``on_stage``: the stage's line, its facts, and for a failed one why and where."""
    if result.status == "interrupted":
        return               # report() says it, in one line
    print(f"{result.name:<28} {result.status:<12} {result.seconds:7.1f}s", flush=True)
    for line in stage_facts(result):
        print(f"    {line}", flush=True)
    if not result.ok:
        for line in result.message.strip().splitlines() or ["(no message)"]:
            print(f"    {line}")
        if result.kernel_log:
            print("    the kernel's stderr, last lines:")
            for line in result.kernel_log.splitlines()[-20:]:
                print(f"      {line}")
        print(f"    see {result.output}")


def stage_facts(result: StageResult) -> list[str]:
    """What an operator must know of a stage besides its result: its summary (nb.summary), its
    waits for database health and the control actions applied during it."""
    skip = {"throttle"} | ({"control"} if result.control else set())   # read from the database, below
    if result.throttle:                      # so is what the notebook said of throttling
        skip |= {k for k in result.summary if k.startswith(("throttle", "replica_lag"))}
    lines = archive.summary_lines(result.summary, skip=skip)
    throttle = control.throttle_line(result.throttle or result.summary.get("throttle"))
    lines += [throttle] if throttle else []
    return lines + [control.action_line(a) for a in result.control]


def report(results: list[StageResult], run_dir: Path, planned=(), named_run_dir: bool = False) -> int:
    """The run's end: an interruption (on stderr), or the stages not run and the run directory;
    the exit code."""
    if results and results[-1].status == "interrupted":
        last = results[-1]
        where = "before stage" if "before it started" in last.message else "in stage"
        again = " with a new --run-dir" if named_run_dir else ""
        print(f"interrupted by {signal.Signals(last.signal).name} {where} {last.name}: re-run the same command{again} to resume "
              f"(or --from {last.name}); run directory: {run_dir}", file=sys.stderr, flush=True)
        return 128 + last.signal
    for stage in list(planned)[len(results):]:
        print(f"{stage.name:<28} {'not run':<12}")
    print(f"run directory: {run_dir}")
    return 0 if results and all(r.ok for r in results) else 1


def say_next(book, stages, code: int) -> bool:
    """After a run that passed and reached the runbook's last stage: what to do next (its
    ``next:``). Whether it said anything."""
    lines = (getattr(book, "next", "") or "").strip().splitlines()
    if not (lines and code == 0 and stages and stages[-1].name == book.stages[-1].name):
        return False
    for line in lines:
        print(line)
    return True


def say_anchor(run_dir: Path, out=None) -> None:
    """The run's last lines: its signature when signed, and the manifest's sha256, the anchor an
    operator pastes into the change ticket (verify --expect-sha256 checks it)."""
    manifest = Path(run_dir) / archive.MANIFEST
    if not manifest.is_file():
        return
    from . import seal
    signature = seal.signature_of(manifest)
    if signature.is_file():
        print(f"signed: {signature}", file=out or sys.stdout)
    print(f"manifest sha256: {archive.sha256(manifest)}", file=out or sys.stdout, flush=True)
