"""Writes outside the runner are explicit: a writing stage run alone (JupyterLab, plain papermill)
is a dry run unless confirm=True, and a confirmed one is recorded in tenancy_runbook.interactive_writes.
Each test of a stage runs once per app (Data Hub, the projects app), each by its spec; the record's
own mechanics are the same for every spec and are tested on Data Hub."""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import column_states, notebook_text, query, run_runbook, schema_snapshot, snapshot

from tenancy_runbook import archive, db, interactive, runlock
from tenancy_runbook.errors import RunbookError
from tenancy_runbook.paths import NOTEBOOKS_DIR
from tenancy_runbook.stages import add_workspace_columns

STAGE = "10_add_workspace_columns"
DRY_RUN = f"Dry run: {STAGE} run outside the runner changes nothing unless confirm=True."
# app -> the table and the name of its tenant-scoped unique index (built CONCURRENTLY), a foreign
# key migration 1's plan lists, and a table whose SET NOT NULL 40's plan shows
UNIQUE = {"datahub": ("Connection", "Connection_workspaceId_provider_key"),
          "projects": ("Label", "Label_workspaceId_name_key")}
FOREIGN_KEY = {"datahub": "Insight_workspaceId_fkey", "projects": "Attachment_workspaceId_fkey"}
NOT_NULL_TABLE = {"datahub": "Insight", "projects": "Attachment"}


def alone(notebook: str, out, url: str, *args: str):
    """The notebook executed with plain papermill, as an operator would outside the runner
    (DATABASE_URL set, the runner's run id not)."""
    env = {k: v for k, v in os.environ.items() if k != db.RUN_ID_ENV}
    return subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / f"{notebook}.ipynb"), str(out),
                           "--no-progress-bar", *args], cwd=NOTEBOOKS_DIR, env={**env, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=300)


def catalog(url: str) -> list:
    """Every schema, relation, constraint and function of the database (pg_catalog and the
    information schema left out): what any DDL would change."""
    return query(url, """
        SELECT 'schema', nspname, '' FROM pg_namespace
         WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
        UNION ALL SELECT 'relation', n.nspname || '.' || c.relname, c.relkind::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
        UNION ALL SELECT 'constraint', conrelid::regclass::text || '.' || conname, convalidated::text
          FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
        UNION ALL SELECT 'function', p.oid::regprocedure::text, ''
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
        ORDER BY 1, 2, 3""")


def recorded(url: str) -> list:
    if query(url, "SELECT to_regclass('tenancy_runbook.interactive_writes') IS NOT NULL")[0][0] is False:
        return []
    return query(url, """SELECT stage, run_id, db_user, os_user, host, pid, ended_at IS NOT NULL, changed
                         FROM tenancy_runbook.interactive_writes ORDER BY id""")


def test_stage_10_with_plain_papermill_changes_nothing_without_confirm(app, seeded, tmp_path):
    url = seeded()
    first, (unique_table, unique_index) = app.tables[0], UNIQUE[app.name]
    before = snapshot(url), schema_snapshot(url), catalog(url)
    out = tmp_path / "10.ipynb"
    result = alone(STAGE, out, url)
    assert result.returncode == 0, result.stderr[-3000:]

    text = notebook_text(out)
    assert DRY_RUN in text and "(read-only transactions" in text
    for words in (f"{STAGE} with confirm=True would, in this order:",
                  f'ALTER TABLE "{first}" ADD COLUMN IF NOT EXISTS "workspaceId" TEXT',
                  f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{unique_index}" ON "{unique_table}"',
                  f"add foreign key {FOREIGN_KEY[app.name]} NOT VALID",
                  "record migration 1 as applied in tenancy_runbook.applied_migrations",
                  f"Dry run: {STAGE} changed nothing (confirm is not True; its connection was read-only).",
                  "papermill -p confirm True"):
        assert words in text, words
    assert "Recorded in" not in text
    assert (snapshot(url), schema_snapshot(url), catalog(url)) == before, "nothing changed, not even the record"
    assert column_states(url) == {t: "absent" for t in app.tables}
    assert recorded(url) == []

    facts = archive.summary(out)
    assert facts["dry_run"] == "nothing was changed (confirm is not True)"
    assert f"{first}: add column {first}.workspaceId (nullable)" in facts["would"]
    assert "would_refuse" not in facts
    assert [g["result"] for g in archive.gates(out)] == ["passed"], "a dry run ends passing"


def test_a_confirmed_interactive_write_is_recorded_and_listed_for_the_next_run(app, seeded, tmp_path):
    url = seeded()
    started = datetime.now(timezone.utc) - timedelta(seconds=5)
    out = tmp_path / "10.ipynb"
    result = alone(STAGE, out, url, "-p", "confirm", "True")
    assert result.returncode == 0, result.stderr[-3000:]
    assert column_states(url) == {t: "YES" for t in app.tables}
    text = notebook_text(out)
    assert f"Confirmed (confirm=True): {STAGE} run outside the runner writes." in text
    assert "Recorded in tenancy_runbook.interactive_writes (id 1): 10_add_workspace_columns, run adhoc-" in text
    assert "Dry run" not in text

    [(stage, run_id, db_user, os_user, host, pid, ended, changed)] = recorded(url)
    role = query(url, "SELECT session_user::text")[0][0]
    assert (stage, db_user, os_user, ended) == (STAGE, role, getpass.getuser(), True)
    assert run_id.startswith(runlock.ADHOC) and host.startswith(socket.gethostname()) and pid > 0
    assert changed["action"] == "applied; recorded in tenancy_runbook.applied_migrations"
    assert f"add column {app.tables[0]}.workspaceId" in changed["ddl_steps"]
    assert f"build index {UNIQUE[app.name][1]}" in changed["ddl_steps"]

    with db.connect(url, read_only=True) as conn:      # what the runner's lock session can read
        [listed] = interactive.since(conn)
        assert interactive.since(conn, started.isoformat()) == [listed]
        assert interactive.since(conn, datetime.now(timezone.utc) + timedelta(seconds=5)) == []
    assert (listed["stage"], listed["run_id"], listed["db_user"], listed["os_user"]) == (STAGE, run_id, role, os_user)
    assert listed["host"] == host and listed["changed"] == changed
    assert datetime.fromisoformat(listed["at"]) <= datetime.fromisoformat(listed["ended_at"])
    assert isinstance(listed["at"], str) and isinstance(listed["id"], int), "JSON-ready for the manifest"

    again = alone(STAGE, tmp_path / "10-again.ipynb", url)        # now done: a dry run says so
    assert again.returncode == 0, again.stderr[-3000:]
    assert "would change nothing: everything is done already" in notebook_text(tmp_path / "10-again.ipynb")
    assert len(recorded(url)) == 1

    # the next run lists it in its manifest and its index.html
    run_dir = tmp_path / "outputs" / "next"
    assert run_runbook(url, run_dir, "--to", "00_preflight").returncode == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    [(entry)] = manifest["interactive_writes"]["writes"]
    assert (entry["stage"], entry["run_id"], entry["os_user"]) == (STAGE, run_id, os_user)
    index = (run_dir / "index.html").read_text()
    assert "Writes outside the runner since the previous run" in index and run_id in index


def test_under_the_runner_no_confirm_is_needed_and_nothing_is_recorded(app, seeded, tmp_path):
    url = seeded()
    result = run_runbook(url, tmp_path / "run", "--to", STAGE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert column_states(url) == {t: "YES" for t in app.tables}
    assert query(url, "SELECT to_regclass('tenancy_runbook.interactive_writes')") == [(None,)]
    text = notebook_text(tmp_path / "run" / f"{STAGE}.ipynb")
    assert "Dry run" not in text and "Confirmed" not in text and "Recorded in" not in text


def test_writes_and_record_outside_and_under_the_runner(datahub, monkeypatch, capsys):
    # on Data Hub only: the record and its confirm switch read no spec
    url = datahub()
    monkeypatch.delenv(db.RUN_ID_ENV, raising=False)
    assert not interactive.under_runner()
    assert interactive.writes(False, "20_backfill") is False
    assert capsys.readouterr().out.startswith(
        "Dry run: 20_backfill run outside the runner changes nothing unless confirm=True.")
    assert interactive.writes(True, "20_backfill") is True
    assert "recorded in tenancy_runbook.interactive_writes" in capsys.readouterr().out

    with db.connect(url, read_only=True) as conn:
        assert interactive.since(conn) == [] and not interactive.present(conn)
        with pytest.raises(RunbookError, match="needs the stage's read-write connection"):
            interactive.record(conn, "20_backfill", "adhoc-x")
    with db.connect(url) as conn:
        entry = interactive.record(conn, "20_backfill", "adhoc-x")
        interactive.finish(conn, entry, {"rows": {"Connection": 3}, "nan": float("nan")})
        [row] = interactive.since(conn)
        assert row["changed"] == {"rows": {"Connection": 3}, "nan": None}
    assert capsys.readouterr().out.startswith("Recorded in tenancy_runbook.interactive_writes (id 1): 20_backfill")

    monkeypatch.setenv(db.RUN_ID_ENV, "20261128T101500Z-1a2b3c")   # a kernel of the runner
    assert interactive.under_runner() and interactive.writes(False, "20_backfill") is True
    assert capsys.readouterr().out == ""
    with db.connect(url) as conn:
        assert interactive.record(conn, "20_backfill", "20261128T101500Z-1a2b3c") is None
        interactive.finish(conn, None, {"rows": 1})
        assert len(interactive.since(conn)) == 1


def test_a_role_that_may_not_create_the_record_is_told_the_grant_and_nothing_is_written(datahub, server_url):
    # on Data Hub only: the record's schema and its grant are the same for every spec
    url = datahub()
    role = f"trb_interactive_{uuid.uuid4().hex[:8]}"
    name = urlsplit(url).path.lstrip("/")
    query(url, f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB")
    try:
        query(url, f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        query(url, f'GRANT CONNECT ON DATABASE "{name}" TO {role}')
        parts = urlsplit(url)
        as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))
        with db.connect(as_role) as conn, pytest.raises(RunbookError) as refused:
            interactive.record(conn, STAGE, "adhoc-x")
        message = str(refused.value)
        assert "cannot create tenancy_runbook.interactive_writes" in message and "Nothing was changed." in message
        assert f"GRANT USAGE, CREATE ON SCHEMA tenancy_runbook TO {role}" in message
        assert query(url, "SELECT to_regnamespace('tenancy_runbook')") == [(None,)]
    finally:
        query(url, f"DROP OWNED BY {role}")
        query(server_url, f"DROP ROLE IF EXISTS {role}")


def test_each_writing_stage_has_a_plan_that_writes_nothing(app, seeded):
    """The dry run's plan of each stage, at each point of the migration, from a read-only connection."""
    from tenancy_runbook.stages import backfill, enforce_not_null, remove_guard

    url = seeded()
    with db.connect(url, read_only=True) as conn:
        assert "Run stage 10_add_workspace_columns (migration 1) first" in backfill.plan(conn, "fail", "fail").refusal
        assert "Run stage 10_add_workspace_columns" in enforce_not_null.plan(conn, "fail").refusal
        found = remove_guard.plan(conn, remove_guard.placements(conn), "15min")
        assert found.steps.empty and not found.refusal
    with db.connect(url) as conn:
        from tenancy_runbook.locks import DDLLog, RetryPolicy
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
    with db.connect(url, read_only=True) as conn:
        assert add_workspace_columns.plan(conn).steps.empty
        found = backfill.plan(conn, "fail", "fail")
        assert not found.refusal
        batched = found.steps[found.steps["step"] == "backfill workspaceId by the rule, in batches"]
        left = backfill.leftover(conn)
        assert dict(zip(batched["table"], batched["rows"])) == {
            r.table: r.nulls - r.unplaceable for r in left.itertuples() if r.nulls > r.unplaceable}
        assert int(batched["rows"].sum()) > 0
        assert list(found.steps.loc[found.steps["step"] == "install the transition guard", "table"]) == list(app.tables)
        assert "transition guard is not installed" in enforce_not_null.plan(conn, "fail").refusal
    assert column_states(url) == {t: "YES" for t in app.tables}


def test_the_next_runs_manifest_lists_the_interactive_writes_since_the_previous_run(datahub, tmp_path, monkeypatch):
    # on Data Hub only: which writes the manifest lists depends on the record and the chain, not the spec
    url = datahub()
    monkeypatch.delenv(db.RUN_ID_ENV, raising=False)
    outputs = tmp_path / "outputs"
    with db.connect(url) as conn:
        target = archive.database(conn, url)
        assert interactive.for_manifest(conn, outputs / "run-1", target, archive.now()) == {
            "previous_run": None, "since": None, "writes": []}
        entry = interactive.record(conn, "40_enforce_not_null", "adhoc-y")
        interactive.finish(conn, entry, {"action": "applied"})
        first = interactive.for_manifest(conn, outputs / "run-1", target, archive.now())
        assert first["previous_run"] is None and [w["stage"] for w in first["writes"]] == ["40_enforce_not_null"]

        # a previous run against this database that started after the write: nothing new since
        (outputs / "run-1").mkdir(parents=True)
        (outputs / "run-1" / "manifest.json").write_text(
            json.dumps({"started_at": archive.now(), "database": target}, default=str))
        now = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat(timespec="milliseconds")
        later = interactive.for_manifest(conn, outputs / "run-2", target, now)
        assert later["previous_run"] == "run-1" and later["writes"] == []
        entry = interactive.record(conn, "60_remove_guard", "adhoc-z")
        listed = interactive.for_manifest(conn, outputs / "run-2", target, now)
        assert [(w["stage"], w["ended_at"]) for w in listed["writes"]] == [("60_remove_guard", None)], \
            "one that stopped before its writes were done is listed too"

        # a run of another database (another chain) is not the previous run
        other = {**target, "database": "elsewhere", "system_identifier": "1"}
        assert len(interactive.for_manifest(conn, outputs / "run-2", other, now)["writes"]) == 2


def test_dry_runs_of_20_40_60_show_their_plan_and_change_nothing(app, seeded, tmp_path):
    url = seeded()
    assert run_runbook(url, tmp_path / "run", "--to", STAGE).returncode == 0     # migration 1 applied
    before = snapshot(url), schema_snapshot(url), catalog(url)
    table = NOT_NULL_TABLE[app.name]
    expected = {"20_backfill": ["install the transition guard", "backfill workspaceId by the rule, in batches",
                                "sql/backfill/pages_rule.sql, then sql/backfill/batch_rule.sql"],
                "40_enforce_not_null": ["A confirmed run would refuse now, before writing: The transition guard "
                                        "is not installed on every table", "SET NOT NULL",
                                        f'ALTER TABLE "{table}" ALTER COLUMN "workspaceId" SET NOT NULL'],
                "60_remove_guard": ["The transition guard is not installed on any table: nothing to remove.",
                                    "With confirm=True it would change nothing: everything is done already."]}
    for notebook, words in expected.items():
        out = tmp_path / f"{notebook}.ipynb"
        result = alone(notebook, out, url)
        assert result.returncode == 0, (notebook, result.stderr[-3000:])
        text = notebook_text(out)
        for word in [f"Dry run: {notebook} run outside the runner changes nothing unless confirm=True.",
                     f"Dry run: {notebook} changed nothing (confirm is not True", *words]:
            assert word in text, (notebook, word)
        assert all(g["result"] == "passed" for g in archive.gates(out)), notebook
        assert archive.summary(out)["dry_run"] == "nothing was changed (confirm is not True)"
    assert (snapshot(url), schema_snapshot(url), catalog(url)) == before
    assert recorded(url) == []
