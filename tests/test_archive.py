"""The run archive: a manifest that names everything, hashes that catch any change, a chain.
The archive of a whole run, passed or failed, is checked once per app (Data Hub, the projects
app), each by its spec; verify and the chain read no spec and are checked on Data Hub."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import urlsplit

from conftest import cli, run_runbook


def manifest(run_dir) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_a_run_leaves_notebooks_html_and_a_complete_manifest(app, seeded, tmp_path):
    url = seeded()
    run_dir = tmp_path / "outputs" / "20990101T000000Z-aaaaaa"
    assert run_runbook(url, run_dir).returncode == 0

    m = manifest(run_dir)
    stages = [s["name"] for s in m["stages"]]
    assert len(stages) == 6 and all(s["result"] == "ok" for s in m["stages"])   # 00-50: the guard stays
    for stage in stages:
        assert (run_dir / f"{stage}.ipynb").is_file() and (run_dir / f"{stage}.html").is_file()
        html = (run_dir / f"{stage}.html").read_text()
        assert not re.search(r'<(?:script|link|img|iframe)\b[^>]*(?:src|href)="https?://', html), \
            "the HTML loads nothing from the network: it opens offline"
    assert "data:image/png;base64," in (run_dir / "00_preflight.html").read_text()
    assert m["run_id"] == run_dir.name and m["result"] == "passed" and m["spec"]["name"] == app.name
    assert m["runbook"]["sha256"] == hashlib.sha256(open(m["runbook"]["path"], "rb").read()).hexdigest()
    assert m["operator"]["user"] and m["operator"]["host"]
    assert re.fullmatch(r"[0-9a-f]{40}", m["suite"]["git_commit"] or "") or m["suite"]["git_commit"] is None
    assert m["suite"]["packages"]["papermill"] and m["suite"]["packages"]["psycopg"]
    assert m["suite"]["lock_sha256"] == hashlib.sha256(open("requirements.lock", "rb").read()).hexdigest()
    assert m["database"]["server_version"] and m["database"]["database"] == urlsplit(url).path.lstrip("/")
    assert m["database"]["system_identifier"] is None or m["database"]["system_identifier"].isdigit()
    assert m["stages"][0]["parameters"] == {"on_collision": "fail", "on_orphan": "fail", "lock_timeout": "500ms"}
    gates = m["stages"][0]["gates"]
    assert [g["result"] for g in gates] == ["passed"] * 3 and all(g["started_at"] for g in gates)  # tables, privileges, preflight
    assert set(m["artifacts"]) == {p.name for p in run_dir.iterdir()} - {"manifest.json", "index.html"}
    assert m["previous_manifest"] is None

    result = cli("verify", run_dir)
    assert result.returncode == 0 and result.stdout.strip().endswith("intact")


def test_verify_names_every_changed_missing_or_added_file(datahub, tmp_path):
    # on Data Hub only: verify compares the files with the manifest's hashes, whatever the spec
    url = datahub()
    run_dir = tmp_path / "run"
    assert run_runbook(url, run_dir, "--to", "00_preflight").returncode == 0
    (run_dir / "00_preflight.ipynb").write_text((run_dir / "00_preflight.ipynb").read_text().replace("ok", "OK"))
    (run_dir / "00_preflight.html").unlink()
    (run_dir / "notes.txt").write_text("added later")

    result = cli("verify", run_dir)

    assert result.returncode == 1
    assert "changed: 00_preflight.ipynb" in result.stdout
    assert "missing: 00_preflight.html" in result.stdout
    assert "added: notes.txt" in result.stdout
    assert cli("verify", tmp_path / "nope").returncode == 2


def test_runs_form_a_chain_that_verify_checks_both_ways(datahub, tmp_path):
    # on Data Hub only: the chain links manifests of one database, whatever the spec
    url = datahub()
    outputs = tmp_path / "outputs"
    first, second = outputs / "20990101T000000Z-aaaaaa", outputs / "20990101T000001Z-bbbbbb"
    assert run_runbook(url, first, "--to", "00_preflight").returncode == 0
    assert run_runbook(url, second, "--to", "00_preflight").returncode == 0

    link = manifest(second)["previous_manifest"]
    assert link == {"run_id": first.name, "path": f"../{first.name}/manifest.json",
                    "sha256": hashlib.sha256((first / "manifest.json").read_bytes()).hexdigest()}
    assert cli("verify", second).returncode == 0

    edited = manifest(first)
    edited["operator"]["user"] = "someone else"
    (first / "manifest.json").write_text(json.dumps(edited))
    assert f"chain: the previous run's manifest {first.name}/manifest.json was changed" in cli("verify", second).stdout
    assert f"manifest.json was changed after run {second.name} recorded it" in cli("verify", first).stdout


def test_a_failed_run_is_archived_with_the_failing_cell(app, seeded, tmp_path):
    url = seeded(shared_pairs=3, collisions=1)
    run_dir = tmp_path / "run"
    assert run_runbook(url, run_dir).returncode == 1

    m = manifest(run_dir)
    assert m["result"] == "failed"
    assert [(s["name"], s["result"]) for s in m["stages"]][:2] == [("00_preflight", "gate failed"),
                                                                    ("10_add_workspace_columns", "not run")]
    gate = m["stages"][0]["gates"][-1]
    assert gate["result"] == "failed" and "collision" in gate["message"]
    html = (run_dir / "00_preflight.html").read_text()
    assert "AssertionError" in html and "Preflight gate" in html
    assert cli("verify", run_dir).returncode == 0
