"""The run archive: evidence that stands on its own a year later.

``outputs/<run>/`` holds, per stage, the executed notebook and a self-contained HTML export
(charts inline, no external script), and ``manifest.json``: what ran (runbook and its
sha256, parameters with secrets redacted, the suite's commit and package versions), who ran
it where, against which server (version, system_identifier, database), when each stage and
each gate started, ended and how, the sha256 of every artifact, and the sha256 of the
previous run's manifest in the same outputs/ folder, so runs form a chain.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import socket
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import nbformat
import psycopg
from psycopg import sql

from . import __version__, db
from .paths import ROOT

MANIFEST = "manifest.json"
SUMMARY_MIME = "application/vnd.tenancy-runbook.summary+json"   # nb.summary(): a stage's facts
PACKAGES = ("tenancy-runbook", "papermill", "nbclient", "nbconvert", "ipykernel", "ipython-sql",
            "prettytable", "pandas", "matplotlib", "sqlalchemy", "psycopg", "pyyaml", "squawk-cli")
SECRET_NAME = re.compile(r"pass|secret|token|dsn|url|key|credential", re.I)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_html(notebook: Path) -> Path:
    """The executed notebook as one HTML file that opens offline (images inline)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(mathjax_url="", require_js_url="", jquery_url="")
    html, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    out = notebook.with_suffix(".html")
    out.write_text(db.redact(html), encoding="utf-8")
    return out


def gates(notebook: Path) -> list[dict]:
    """Each gate cell (tagged 'gate') of an executed notebook: when it ran and how it ended."""
    if not notebook.exists():
        return []
    nb = nbformat.read(notebook, as_version=4)
    out = []
    for index, cell in enumerate(nb.cells):
        if "gate" not in cell.metadata.get("tags", []):
            continue
        run = cell.metadata.get("papermill", {})
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        status = {"completed": "passed", "failed": "failed"}.get(run.get("status"), "not run")
        out.append({"cell": index, "assert": _first_assert(cell.source), "result": status,
                    "started_at": run.get("start_time"), "ended_at": run.get("end_time"),
                    "message": db.redact(errors[0].get("evalue", "")) if errors else ""})
    return out


def summary(notebook: Path) -> dict:
    """The facts an executed notebook gave nb.summary() (several calls add up; {}: none)."""
    if not notebook.exists():
        return {}
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:   # noqa: BLE001 - a notebook saved half-way is evidence still, without a summary
        return {}
    facts: dict = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {}) if output.get("output_type") in ("display_data", "execute_result") else {}
            if isinstance(data.get(SUMMARY_MIME), dict):
                facts.update(data[SUMMARY_MIME])
    return facts


def summary_lines(facts: dict, skip=()) -> list[str]:
    """One line per fact (``rows quarantined: Connection 2, MetricDaily 48``); None left out.
    ``throttle`` (health.Throttle.summary()) reads as control.throttle_line() does."""
    lines = []
    for key, value in facts.items():
        if key in skip or value is None:
            continue
        if key == "throttle" and isinstance(value, dict):
            from .control import throttle_line
            lines += [throttle_line(value) or "throttled: never"]
            continue
        label = key.removesuffix("_s").removesuffix("_bytes").replace("_", " ")
        lines.append(f"{label}: {_fact(key, value)}")
    return lines


def _fact(key: str, value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if key.endswith("_s"):
            return f"{value:.1f} s"
        if key.endswith("_bytes"):
            from .health import size_text
            return size_text(value)
        return f"{value:,}" if isinstance(value, int) else f"{value:g}"
    if isinstance(value, dict):
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())
        if numeric:
            parts = [f"{k} {_fact(key, v)}" for k, v in value.items() if v]
            return ", ".join(parts) if parts else "none"
        return ", ".join(f"{k} {_fact(str(k), v)}" for k, v in value.items() if v is not None) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fact(key, v) for v in value) if value else "none"
    return str(value)


def plain(value):
    """For json.dumps: numpy and pandas scalars as numbers, times as ISO text."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON: give numbers, text, lists and dicts")


def _first_assert(source: str) -> str:
    for line in source.splitlines():
        if line.lstrip().startswith("assert "):
            return line.strip()[:200]
    return ""


def redact_parameters(params: dict) -> dict:
    """Parameters as archived: values of secret-looking names, and passwords anywhere, hidden."""
    return {k: "***" if SECRET_NAME.search(k) else (db.redact(v) if isinstance(v, str) else v)
            for k, v in params.items()}


def suite() -> dict:
    """This suite's version, git commit (and whether the checkout had changes), packages."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"version": __version__, "git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(status), "packages": versions}


def database(conn: psycopg.Connection, url: str) -> dict:
    """The server and database, identified without the password."""
    info = {"dsn": db.describe(url), **db.one(conn, "archive/server")}
    try:
        info["system_identifier"] = db.one(conn, "archive/system_identifier")["system_identifier"]
    except psycopg.errors.InsufficientPrivilege:
        info["system_identifier"] = None
        grant = sql.SQL("GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO {};").format(
            sql.Identifier(info["user"])).as_string(conn)
        info["system_identifier_note"] = f"not permitted (optional; {grant} records it)"
    return info


def previous_manifest(run_dir: Path) -> dict | None:
    """The latest earlier run in the same outputs/ folder that has a manifest."""
    earlier = sorted(p for p in run_dir.parent.iterdir()
                     if p.is_dir() and p.name < run_dir.name and (p / MANIFEST).is_file())
    if not earlier:
        return None
    last = earlier[-1]
    return {"run_id": last.name, "sha256": sha256(last / MANIFEST)}


def artifacts(run_dir: Path) -> dict:
    return {p.relative_to(run_dir).as_posix(): sha256(p)
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != MANIFEST}


def write_manifest(run_dir: Path, record: dict) -> Path:
    """manifest.json: ``record`` plus the artifacts' hashes and the chain link."""
    manifest = {**record, "previous_manifest": previous_manifest(run_dir), "artifacts": artifacts(run_dir)}
    path = run_dir / MANIFEST
    path.write_text(db.redact(json.dumps(manifest, indent=2, default=str)) + "\n", encoding="utf-8")
    return path


def operator() -> dict:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return {"user": user, "host": socket.gethostname()}


def verify(run_dir: Path) -> list[str]:
    """What is wrong with an archived run: changed, missing or added files, a broken chain."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.is_file():
        return [f"{path}: missing (not a run directory, or its manifest was removed)"]
    try:
        manifest = json.loads(path.read_text())
        recorded = dict(manifest["artifacts"])
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{path}: unreadable manifest ({exc})"]
    problems = []
    actual = artifacts(run_dir)
    for name, digest in recorded.items():
        if name not in actual:
            problems.append(f"missing: {name}")
        elif actual[name] != digest:
            problems.append(f"changed: {name}")
    problems += [f"added: {name}" for name in actual if name not in recorded]
    link = manifest.get("previous_manifest")
    if link:
        previous = run_dir.parent / link["run_id"] / MANIFEST
        if not previous.is_file():
            problems.append(f"chain: the previous run's manifest {link['run_id']}/{MANIFEST} is missing")
        elif sha256(previous) != link["sha256"]:
            problems.append(f"chain: the previous run's manifest {link['run_id']}/{MANIFEST} was changed")
    for later in sorted(run_dir.parent.glob(f"*/{MANIFEST}")):
        try:
            back = json.loads(later.read_text()).get("previous_manifest") or {}
        except ValueError:
            continue
        if back.get("run_id") == run_dir.name and back.get("sha256") != sha256(path):
            problems.append(f"chain: {MANIFEST} was changed after run {later.parent.name} recorded it")
    return problems
