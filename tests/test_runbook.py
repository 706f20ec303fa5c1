"""The runbook end to end, executed by papermill through the CLI, against real PostgreSQL: each
test once per app (Data Hub, and the projects app of tests/apps/projects/), each by its spec."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import (actual_workspaces, app_of, column_states, expected_workspaces, notebook_text, query,
                      run_runbook, schema_snapshot, snapshot, stage_lines)

from tenancy_runbook.paths import ROOT

STAGES = ["00_preflight", "10_add_workspace_columns", "20_backfill", "30_check_backfill",
          "40_enforce_not_null", "50_post_verify"]    # the guard stays: runbooks/finish.yaml (tests/test_finish.py)


def test_full_run_migrates_every_row_by_the_rule(app, seeded, tmp_path):
    url = seeded()
    expected = expected_workspaces(url)
    assert all(None not in v.values() for v in expected.values()), "seed should be placeable"

    result = run_runbook(url, tmp_path / "run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert stage_lines(result.stdout) == {s: "ok" for s in STAGES}
    assert f"run directory: {tmp_path / 'run'}" in result.stdout.splitlines()
    assert sorted(p.stem for p in (tmp_path / "run").glob("*.ipynb")) == STAGES
    assert actual_workspaces(url) == expected
    assert column_states(url) == {t: "NO" for t in app.tables}
    # the manifest names the tenancy spec the run followed, by content
    spec_file = app.spec.resolve()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["spec"] == {"path": str(spec_file), "name": app.name,
                                "sha256": hashlib.sha256(spec_file.read_bytes()).hexdigest()}
    check = notebook_text(tmp_path / "run" / "30_check_backfill.ipynb")
    assert f"PASSED: All {app.title} workspaceId values are backfilled (no NULLs).\n" in check
    # charts are embedded in the executed notebooks
    nb = json.loads((tmp_path / "run" / "00_preflight.ipynb").read_text())
    assert sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", [])) >= 2


def test_second_run_on_migrated_database_changes_nothing(app, seeded, tmp_path):
    url = seeded()
    assert run_runbook(url, tmp_path / "first").returncode == 0
    rows, schema, versions = snapshot(url), schema_snapshot(url), row_versions(url)

    again = run_runbook(url, tmp_path / "second")

    assert again.returncode == 0, again.stdout + again.stderr
    assert stage_lines(again.stdout) == {s: "ok" for s in STAGES}
    assert snapshot(url) == rows
    assert schema_snapshot(url) == schema
    assert row_versions(url) == versions, "a row was rewritten"
    assert "already applied" in notebook_text(tmp_path / "second" / "10_add_workspace_columns.ipynb")
    updated = re.findall(r"^\d+\s+(\w+)\s+(\d+)\s+[\d.]+$",
                         notebook_text(tmp_path / "second" / "20_backfill.ipynb"), re.M)
    assert updated == [(t, "0") for t in app.tables]


def row_versions(url: str) -> dict:
    """Each row's xmin: it changes whenever a row is written, even with the same values."""
    return {t: query(url, "SELECT id, xmin::text FROM {t} ORDER BY id", t=t) for t in app_of(url).tables}


MESS = {   # app -> what makes its preflight refuse, and words its report must give
    "datahub": [({"shared_pairs": 3, "collisions": 1}, ["collision", "conn_1_0", "conn_2_0"]),
                ({"orphans": 1}, ["usr_00000013", "orphan"]),
                ({"ambiguous": 1}, ["usr_00000013", "ambiguous"])],
    "projects": [({"shared_pairs": 3, "collisions": 1}, ["collision", "Label", "lbl_00000001_1", "lbl_00000002_1"]),
                 ({"orphans": 1}, ["usr_00000013", "orphan"]),
                 ({"ambiguous": 1}, ["usr_00000013", "ambiguous"])],
}


@pytest.mark.parametrize("case", range(3))
def test_preflight_stops_before_any_write(app, seeded, tmp_path, case):
    mess, expect = MESS[app.name][case]
    url = seeded(**mess)
    rows, schema = snapshot(url), schema_snapshot(url)

    result = run_runbook(url, tmp_path / "run")

    assert result.returncode == 1, result.stdout + result.stderr
    assert stage_lines(result.stdout, with_not_run=True) == {
        "00_preflight": "gate failed", **{s: "not run" for s in STAGES[1:]}}
    for word in expect:
        assert word in result.stdout
    assert "nothing was written" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert schema_snapshot(url) == schema
    assert snapshot(url) == rows
    assert column_states(url) == {t: "absent" for t in app.tables}


def test_enforce_refuses_while_a_null_remains(app, seeded, tmp_path):
    url = seeded()
    assert run_runbook(url, tmp_path / "a", "--to", "30_check_backfill").returncode == 0
    # a user who signed up meanwhile, without a workspace, writes a row the guard cannot place
    app.add_user(url, "late_user")
    app.write_user_row(url, "late", "late_user")

    result = run_runbook(url, tmp_path / "b", "--from", "40_enforce_not_null", "--to", "40_enforce_not_null")

    assert result.returncode == 1, result.stdout + result.stderr
    assert stage_lines(result.stdout) == {"40_enforce_not_null": "gate failed"}
    counts = ", ".join(f"{t}: {int(t == app.user_table)}" for t in app.tables)
    assert f"Cannot enforce NOT NULL: NULL values found. {counts}." in result.stdout
    assert column_states(url) == {t: "YES" for t in app.tables}

    # the remedy works: give the user a workspace, backfill again, then enforce
    query(url, """UPDATE "User" SET "defaultWorkspaceId" = 'ws_1' WHERE id = 'late_user'""")
    fixed = run_runbook(url, tmp_path / "c", "--from", "20_backfill")
    assert fixed.returncode == 0, fixed.stdout
    assert column_states(url) == {t: "NO" for t in app.tables}


def test_rollback_needs_confirm_then_drops_not_null(app, seeded, tmp_path):
    url = seeded()
    assert run_runbook(url, tmp_path / "run").returncode == 0
    rows = snapshot(url)

    refused = run_runbook(url, tmp_path / "r1", runbook="runbooks/rollback.yaml")
    assert refused.returncode == 1
    assert "Rollback not confirmed: nothing was changed" in refused.stdout
    assert column_states(url) == {t: "NO" for t in app.tables}

    done = run_runbook(url, tmp_path / "r2", "-p", "confirm", "true", runbook="runbooks/rollback.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert column_states(url) == {t: "YES" for t in app.tables}
    assert "Made nullable again: " + ", ".join(app.tables) in \
        notebook_text(tmp_path / "r2" / "90_rollback.ipynb")
    assert snapshot(url) == rows

    # and the runbook carries it forward again
    assert run_runbook(url, tmp_path / "again").returncode == 0
    assert column_states(url) == {t: "NO" for t in app.tables}


def test_notebook_runs_alone_with_papermill_and_sql_magic(app, seeded, tmp_path):
    """On its own, a notebook follows the spec TENANCY_RUNBOOK_SPEC names (else Data Hub's)."""
    url = seeded()
    out = tmp_path / "preflight.ipynb"
    result = subprocess.run(
        [sys.executable, "-m", "papermill", "notebooks/00_preflight.ipynb", str(out), "--no-progress-bar"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    nb = json.loads(out.read_text())
    sql_cell = next(c for c in nb["cells"] if "\n%sql " in "\n" + "".join(c["source"]))
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in sql_cell["outputs"])
    sizes = dict(query(url, """SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class
                               WHERE relname = ANY(%s) AND relkind = 'r'""", [list(app.tables)]))
    assert len(sizes) == len(app.tables)                      # the spec's tables, bound as :tables
    for table, size in sizes.items():
        assert f"('{table}', '{size}')" in text, text
    assert " * postgresql+psycopg://" in text
