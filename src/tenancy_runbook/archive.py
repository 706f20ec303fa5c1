"""The run archive: evidence that stands on its own a year later.

``outputs/<run>/`` holds, per stage, the executed notebook and a self-contained HTML export
(charts inline, no external script), and ``manifest.json``: what ran (runbook and its
sha256, parameters with secrets redacted, the suite's commit and package versions), who ran
it where, against which server (version, system_identifier, database), when each stage and
each gate started, ended and how, the sha256 of every artifact, the CI job that ran it, and
the sha256 of the previous run's manifest against the same database (anywhere under the same
outputs/ folder), so each database's runs form a chain of their own. The newest run is anchored
by its manifest's sha256 (printed at the end of the run, for the change ticket) or by an SSH
signature beside it (seal.py).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
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
    """This suite's version, git commit (and whether the checkout had changes), packages, and the
    sha256 of requirements.lock they were installed from (None: an installed copy without it)."""
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
    from . import deps
    return {"version": __version__, "git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(status), "packages": versions, "lock_sha256": deps.lock_sha256()}


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


def identity(database: dict) -> str:
    """Which database a run touched, as the chain knows it: the cluster's system identifier and
    the database's name, or its host, port and name where the identifier could not be read."""
    name = database.get("database") or ""
    if database.get("system_identifier"):
        return f"system {database['system_identifier']} database {name}"
    where = (database.get("dsn") or "").split("@", 1)[-1].split(" ", 1)[0].rsplit("/", 1)[0]
    return f"server {where} database {name}"


def chain_root(run_dir: Path) -> Path:
    """Where a run's chain is looked for: the nearest enclosing folder named outputs, else the
    folder the run directory is in."""
    run_dir = Path(run_dir).resolve()
    return next((p for p in run_dir.parents if p.name == "outputs"), run_dir.parent)


def manifests(root: Path):
    """Every readable manifest under ``root``: (its path, its content)."""
    for path in sorted(Path(root).rglob(MANIFEST)):
        try:
            yield path, json.loads(path.read_text())
        except (OSError, ValueError):
            continue


def previous_manifest(run_dir: Path, database: dict | None = None, started_at: str | None = None) -> dict | None:
    """The last earlier run against the same database (archive.identity) anywhere under the
    chain's root (chain_root), by start time: its id, its manifest's path from ``run_dir`` and
    its sha256. Runs against other databases (a demo's throwaway server) are other chains."""
    run_dir = Path(run_dir).resolve()
    mine = identity(database or {})
    earlier = [(m.get("started_at") or "", path) for path, m in manifests(chain_root(run_dir))
               if path.parent != run_dir and identity(m.get("database") or {}) == mine
               and (started_at is None or (m.get("started_at") or "") < started_at)]
    if not earlier:
        return None
    last = max(earlier)[1]
    return {"run_id": last.parent.name, "path": os.path.relpath(last, run_dir), "sha256": sha256(last)}


UNLISTED = (MANIFEST, MANIFEST + ".sig", "index.html")   # written after the manifest (seal.py, pages.py)


def artifacts(run_dir: Path) -> dict:
    return {p.relative_to(run_dir).as_posix(): sha256(p)
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.relative_to(run_dir).as_posix() not in UNLISTED}


def write_manifest(run_dir: Path, record: dict) -> Path:
    """manifest.json: ``record`` plus the artifacts' hashes and the chain link."""
    link = previous_manifest(run_dir, record.get("database"), record.get("started_at"))
    manifest = {**record, "previous_manifest": link, "artifacts": artifacts(run_dir)}
    path = run_dir / MANIFEST
    path.write_text(db.redact(json.dumps(manifest, indent=2, default=str)) + "\n", encoding="utf-8")
    return path


CI_PROVIDERS = {   # provider: (detected by, run URL, job id, commit, actor): environment variables
    "GitHub Actions": ("GITHUB_ACTIONS", None, "GITHUB_JOB", "GITHUB_SHA", "GITHUB_ACTOR"),
    "GitLab CI": ("GITLAB_CI", "CI_JOB_URL", "CI_JOB_ID", "CI_COMMIT_SHA", "GITLAB_USER_LOGIN"),
    "Jenkins": ("JENKINS_URL", "BUILD_URL", "BUILD_TAG", "GIT_COMMIT", "BUILD_USER_ID"),
}


def ci_context(env=None) -> dict | None:
    """The CI job that runs this (GitHub Actions, GitLab CI, Jenkins), from its variables: the
    provider, the run's URL, the job, the commit and who started it. None outside CI."""
    env = os.environ if env is None else env
    for provider, (flag, url, job, commit, actor) in CI_PROVIDERS.items():
        if not env.get(flag):
            continue
        if provider == "GitHub Actions":
            server, repo, run = (env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
            run_url = f"{server or 'https://github.com'}/{repo}/actions/runs/{run}" if repo and run else None
            if run_url and env.get("GITHUB_RUN_ATTEMPT"):
                run_url += f"/attempts/{env['GITHUB_RUN_ATTEMPT']}"
        else:
            run_url = env.get(url) or env.get("CI_PIPELINE_URL")
        return {"provider": provider, "run_url": db.redact(run_url) if run_url else None,
                "job_id": env.get(job), "commit": env.get(commit), "actor": env.get(actor)}
    return None


def operator() -> dict:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return {"user": user, "host": socket.gethostname()}


def verify(run_dir: Path, allowed_signers: Path | None = None, expect_sha256: str | None = None,
           notes: list | None = None) -> list[str]:
    """What is wrong with an archived run: changed, missing or added files, a broken chain, an
    index.html that no longer shows the manifest; with ``allowed_signers``, a signature missing,
    not matching or by a key not allowed; with ``expect_sha256``, a manifest that is not the one
    the change ticket names. ``notes`` receives what was found right (who signed it)."""
    from . import pages, seal
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    notes = [] if notes is None else notes
    if not path.is_file():
        return [f"{path}: missing (not a run directory, or its manifest was removed)"]
    problems = []
    if expect_sha256 is not None:
        actual_sha = sha256(path)
        if actual_sha != expect_sha256.strip().lower():
            problems.append(f"sha256: {MANIFEST} is {actual_sha}, not the {expect_sha256.strip()} expected "
                            "(the manifest was changed since its sha256 was recorded, or this is another run)")
        else:
            notes.append(f"{MANIFEST} sha256 {actual_sha}: as expected")
    if allowed_signers is not None:
        wrong, principal = seal.verify(path, allowed_signers)
        problems += wrong
        if principal:
            notes.append(f"{MANIFEST} signed by {principal} (a key in {allowed_signers})")
    elif seal.signature_of(path).is_file():
        notes.append(f"{MANIFEST}{seal.SIGNATURE} present, not checked: give --allowed-signers FILE")
    try:
        manifest = json.loads(path.read_text())
        recorded = dict(manifest["artifacts"])
    except (ValueError, KeyError, TypeError) as exc:
        return problems + [f"{path}: unreadable manifest ({exc})"]
    actual = artifacts(run_dir)
    for name, digest in recorded.items():
        if name not in actual:
            problems.append(f"missing: {name}")
        elif actual[name] != digest:
            problems.append(f"changed: {name}")
    problems += [f"added: {name}" for name in actual if name not in recorded]
    link = manifest.get("previous_manifest")
    if link:
        previous = (run_dir / link["path"]) if link.get("path") else run_dir.parent / link["run_id"] / MANIFEST
        if not previous.is_file():
            problems.append(f"chain: the previous run's manifest {link['run_id']}/{MANIFEST} is missing")
        elif sha256(previous) != link["sha256"]:
            problems.append(f"chain: the previous run's manifest {link['run_id']}/{MANIFEST} was changed")
    here = run_dir.resolve()
    for later_path, later in manifests(chain_root(run_dir)):
        back = later.get("previous_manifest") or {}
        target = (later_path.parent / back["path"]).resolve().parent if back.get("path") else \
            later_path.parent.parent / str(back.get("run_id"))
        if back and target.resolve() == here and back.get("sha256") != sha256(path):
            problems.append(f"chain: {MANIFEST} was changed after run {later_path.parent.name} recorded it")
    index = manifest.get("index")
    if isinstance(index, dict) and index.get("format") == pages.FORMAT:
        problems += pages.index_problems(run_dir, seal.described(path))
    elif index:
        notes.append(f"{pages.INDEX} not compared: written in format {index.get('format') if isinstance(index, dict) else '?'}, "
                     f"this version renders format {pages.FORMAT} (the manifest and every artifact were checked)")
    return problems
