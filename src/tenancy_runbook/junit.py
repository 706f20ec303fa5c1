"""The run as JUnit XML, which release pipelines read natively (GitLab, Jenkins, GitHub Actions
reporters): one testcase per stage; a stage that failed carries the failing gate's message as its
failure, and every stage lists its gates and how each ended. Written from the run's manifest,
so it says exactly what the archive says."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from . import archive

FAILED = {"gate failed", "error", "failed", "interrupted"}


def document(run_dir: Path) -> ET.ElementTree:
    manifest_bytes = (Path(run_dir) / archive.MANIFEST).read_bytes()
    m = json.loads(manifest_bytes)
    book = m["runbook"]["name"]
    suite = ET.Element("testsuite", name=book, timestamp=str(m.get("started_at") or ""))
    properties = ET.SubElement(suite, "properties")
    for name, value in (("run_id", m.get("run_id")), ("result", m.get("result")),
                        ("run_directory", str(run_dir)),
                        ("manifest_sha256", hashlib.sha256(manifest_bytes).hexdigest()),
                        ("database", (m.get("database") or {}).get("dsn"))):
        ET.SubElement(properties, "property", name=name, value=str(value))
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    total = 0.0
    for stage in m.get("stages", []):
        seconds = float(stage.get("seconds") or 0.0)
        total += seconds
        _case(suite, counts, f"{book}.{stage['name']}", stage["name"], seconds, stage["result"],
              _message(stage), _gates(stage))
    suite.set("tests", str(counts["tests"]))
    suite.set("failures", str(counts["failures"]))
    suite.set("errors", "0")
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", f"{total:.3f}")
    suites = ET.Element("testsuites", name=f"tenancy-runbook {m.get('run_id')}")
    suites.append(suite)
    ET.indent(suites)
    return ET.ElementTree(suites)


def _message(stage: dict) -> str:
    """A failed stage's message: its failing gate's (assert and message), else the stage's."""
    failed = [g for g in stage.get("gates", []) if g["result"] == "failed"]
    if failed:
        return f"gate failed: {failed[0]['assert']}\n{failed[0].get('message') or ''}".strip()
    return stage.get("message") or ""


def _gates(stage: dict) -> str:
    lines = [f"gate {n} {g['result']}: {g['assert']}" for n, g in enumerate(stage.get("gates", []), 1)]
    if stage.get("html"):
        lines.append(f"evidence: {stage['html']}")
    return "\n".join(lines)


def _case(suite, counts, classname, name, seconds, result, message, out) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    counts["tests"] += 1
    if result in FAILED:
        failure = ET.SubElement(case, "failure", message=(message.strip().splitlines() or [result])[0][:500],
                                type=result)
        failure.text = message or result
        counts["failures"] += 1
    elif result != "ok":
        ET.SubElement(case, "skipped", message=result)
        counts["skipped"] += 1
    if out:
        ET.SubElement(case, "system-out").text = out


def write(path: Path, run_dir: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document(run_dir).write(path, encoding="utf-8", xml_declaration=True)
    return path
