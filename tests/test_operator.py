"""The operator's tools: plan, the squawk lint, read-only stages, the notebooks' defaults, lab.
What reads a spec (plan's preflight numbers, the lint of the DDL, the notebooks) runs once per app
(Data Hub, the projects app); the rest reads none and runs on Data Hub."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import psycopg
import pytest
from conftest import cli, column_states, notebook_text, query, run_runbook, schema_snapshot, snapshot

from tenancy_runbook import checks, control, db, health, history, interactive, lint, locks, quarantine, runlock
from tenancy_runbook.paths import NOTEBOOKS_DIR, ROOT, SQL_DIR
from tenancy_runbook.stages import (add_workspace_columns, backfill, check_backfill, enforce_not_null, post_verify,
                                    preflight, remove_guard, rollback)

STAGE_MODULES = [preflight, add_workspace_columns, backfill, check_backfill, enforce_not_null, post_verify,
                 remove_guard, rollback]
SQL_NAME = re.compile(r'"((?:common|preflight|add_workspace_columns|backfill|check_backfill|enforce_not_null|'
                      r'post_verify|remove_guard|rollback|quarantine|history|locks|runlock|health|control|'
                      r'interactive)/\w+)"')
# app -> what plan's preflight numbers say of its seed with one collision: its big table's rows,
# and the projected collisions of its unique key
PLAN_NUMBERS = {"datahub": (240, "Connection (workspaceId, provider) collisions: 2 over 4 rows"),
                "projects": (144, "Label (workspaceId, name) collisions: 3 over 6 rows")}
# app -> the table and the name of its tenant-scoped unique index
UNIQUE_INDEX = {"datahub": ("Connection", "Connection_workspaceId_provider_key"),
                "projects": ("Label", "Label_workspaceId_name_key")}
PRISMA_FINDINGS = {"datahub": 36, "projects": 44}      # squawk's findings in the app's plain migrations


def test_plan_shows_stages_parameters_and_sql_without_a_database():
    # on Data Hub only: without a database, plan lists stages, parameters and SQL files, no spec's table
    result = cli("plan", "runbooks/datahub-tenancy.yaml", "-p", "on_orphan", "quarantine")
    assert result.returncode == 0, result.stderr
    for stage in ("00_preflight", "20_backfill", "40_enforce_not_null"):
        assert f"\n{stage}  (" in result.stdout
    assert "\n60_remove_guard  (" not in result.stdout     # the guard stays after the runbook
    finish = cli("plan", "runbooks/finish.yaml", "--no-sql")
    assert finish.returncode == 0, finish.stderr
    assert "\n60_remove_guard  (" in finish.stdout and "quiet_period = '15min'" in finish.stdout
    assert "on_orphan = 'quarantine'" in result.stdout and "batch_size = 1000 (default)" in result.stdout
    add_check = (SQL_DIR / "enforce_not_null" / "add_check.sql").read_text().splitlines()[-1]
    assert f"| {add_check}" in result.stdout
    assert "DATABASE_URL is not set: no preflight numbers" in result.stdout


def test_plan_with_database_url_adds_the_preflight_numbers_and_writes_nothing(app, seeded):
    url = seeded(shared_pairs=3, collisions=1)
    rows, schema = snapshot(url), schema_snapshot(url)
    big_rows, collisions = PLAN_NUMBERS[app.name]
    result = cli("plan", app.runbook(), "--no-sql", url=url)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"{app.big}\s+rows\s+{big_rows}\s+NULL workspaceId\s+{big_rows}\s+column absent", result.stdout)
    assert f"projected {collisions}" in result.stdout
    assert (snapshot(url), schema_snapshot(url)) == (rows, schema)


def test_every_stage_declares_the_sql_it_runs():
    for module in STAGE_MODULES + [checks, locks, history, quarantine, runlock, health, control, interactive]:
        used = set(SQL_NAME.findall(open(module.__file__).read()))
        assert used <= set(module.SQL), (module.__name__, used - set(module.SQL))
        assert all((SQL_DIR / f"{name}.sql").is_file() for name in module.SQL)
        included = {n for name in module.SQL for n in db.INCLUDE.findall((SQL_DIR / f"{name}.sql").read_text())}
        assert included <= set(module.SQL), (module.__name__, included - set(module.SQL))
    claimed = {name for m in STAGE_MODULES + [runlock] for name in m.SQL}   # runlock: the runner's own too
    runbook_sql = {p.relative_to(SQL_DIR).with_suffix("").as_posix() for p in SQL_DIR.rglob("*.sql")
                   if p.parts[-2] not in ("demo", "archive", "bench") and "migrations" not in p.parts}
    assert runbook_sql <= claimed, runbook_sql - claimed


def test_squawk_passes_the_runbooks_ddl_and_flags_the_plain_migrations(app):
    assert lint.run(lint.runbook_scripts()).empty
    flagged = set(lint.run(lint.prisma_scripts())["rule"])
    assert {"require-concurrent-index-creation", "constraint-missing-not-valid", "adding-foreign-key-constraint",
            "adding-not-nullable-field", "require-lock-timeout", "require-statement-timeout"} <= flagged
    # the rendered scripts are the statements the stages run
    script = "\n".join(lint.runbook_scripts().values())
    table, index = UNIQUE_INDEX[app.name]
    assert f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{index}" ON "{table}"' in script
    assert f'ALTER TABLE "{app.big}" ALTER COLUMN "workspaceId" SET NOT NULL;' in script


def test_read_only_stages_cannot_write(datahub):
    # on Data Hub only: the read-only connection and the notebooks' cells are the same for every spec
    url = datahub()
    with db.connect(url, read_only=True) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("""DELETE FROM "ChatMessage" """)
    for name in ("00_preflight", "30_check_backfill", "50_post_verify"):
        source = json.loads((NOTEBOOKS_DIR / f"{name}.ipynb").read_text())
        assert any("nb.connect(read_only=True, statement_timeout=statement_timeout)" in "".join(c["source"])
                   for c in source["cells"]), name


def test_every_notebook_runs_top_to_bottom_with_its_defaults(app, seeded, tmp_path):
    """As in JupyterLab: each notebook in turn, no parameter given but confirm=True for the writing
    stages (without it, each is a dry run: tests/test_interactive.py); 90_rollback is then a dry run;
    60_remove_guard refuses: the guard has counted for seconds, not its quiet_period."""
    url = seeded()
    writing = ("10_add_workspace_columns", "20_backfill", "40_enforce_not_null", "60_remove_guard")
    for notebook in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        out = tmp_path / notebook.name
        confirm = ["-p", "confirm", "True"] if notebook.stem in writing else []
        result = subprocess.run([sys.executable, "-m", "papermill", str(notebook), str(out), "--no-progress-bar",
                                 *confirm], cwd=NOTEBOOKS_DIR, env={**os.environ, "DATABASE_URL": url},
                                capture_output=True, text=True, timeout=300)
        refuses = notebook.stem == "60_remove_guard"
        assert result.returncode == (1 if refuses else 0), (notebook.name, result.stderr[-2000:])
    assert "Dry run (confirm is not True): nothing was changed" in notebook_text(tmp_path / "90_rollback.ipynb")
    assert "less than quiet_period" in notebook_text(tmp_path / "60_remove_guard.ipynb")
    assert query(url, "SELECT stage FROM tenancy_runbook.interactive_writes ORDER BY id") == [
        (s,) for s in writing[:3]], "each confirmed write recorded (60 refused before writing)"
    assert column_states(url) == {t: "NO" for t in app.tables}
    assert (f"squawk: 0 finding(s) in the runbook's DDL, {PRISMA_FINDINGS[app.name]} in Prisma's plain migrations."
            in notebook_text(tmp_path / "00_preflight.ipynb"))


def test_lab_prepares_a_demo_database_and_stops_it(tmp_path):
    # on Data Hub only: lab's demo database is Data Hub's
    env = {"TENANCY_RUNBOOK_LAB_HOME": str(tmp_path / "lab")}
    first = cli("lab", "--prepare-only", env=env)
    try:
        assert first.returncode == 0, first.stderr
        assert "seeded the demo database" in first.stdout
        url = re.search(r"^DATABASE_URL=(\S+)$", first.stdout, re.M).group(1)
        again = cli("lab", "--prepare-only", env=env)          # running already: reused, not reseeded
        assert again.returncode == 0 and "seeded" not in again.stdout
        assert run_runbook(url, tmp_path / "run", "--to", "00_preflight").returncode == 0
    finally:
        assert cli("lab", "--stop", env=env).returncode == 0
    assert not (tmp_path / "lab" / "pgdata" / "postmaster.pid").exists()


def test_run_id_cannot_be_set_by_hand(tmp_path):
    result = cli("run", "runbooks/datahub-tenancy.yaml", "-p", "run_id", "x", url="postgresql://x@127.0.0.1:1/x")
    assert result.returncode == 2 and "is set by the runner" in result.stderr
    assert (ROOT / "runbooks" / "rollback.yaml").is_file()
