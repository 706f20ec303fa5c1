"""The whole runbook on the second app (tests/apps/projects/), driven by its spec alone
(tests/specs/projects.spec.yaml): the same stages, notebooks and SQL as Data Hub's, with every
guarantee Data Hub's run has: collisions and orphans quarantined, the guard placing what an old
server writes meanwhile, a kill and a resume, Prisma's history, rollback, the quarantine put back
exactly, and evidence that speaks of the projects app only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from conftest import (PROJECTS_SPEC, ROOT, cli, kill_run, notebook_text, projects_expected, query, seed_projects,
                      stage_lines, write_runbook)

SPEC = PROJECTS_SPEC
STAGES = ("00_preflight", "10_add_workspace_columns", "20_backfill", "30_check_backfill",
          "40_enforce_not_null", "50_post_verify")
DATAHUB_NAMES = ("Connection", "MetricDaily", "Insight", "ChatMessage", "datahub_quarantine")
expected = projects_expected()
TABLES = expected.TABLES


def runbook(tmp_path: Path, name: str, stages, **parameters) -> Path:
    """A runbook of the projects app: the projects spec, these stages and parameters."""
    return write_runbook(tmp_path, name, SPEC, stages, **parameters)


def rows(url: str, table: str, schema: str = "public") -> dict:
    """Every row of a table as text, without its workspaceId (what a restore must give back)."""
    found = query(url, """SELECT t."id", (to_jsonb(t) - 'workspaceId' - 'reason' - 'run_id' - 'quarantined_at')::text
                          FROM {s}.{t} AS t""", s=schema, t=table)
    return dict(found)


def live(url: str) -> dict:
    return {t: dict(query(url, 'SELECT "id", "workspaceId" FROM {t}', t=t)) for t in TABLES}


def assert_migrated_as_expected(url: str, outcomes: dict) -> None:
    """Every row expected.py says migrates is live with its workspace; every other one is in
    projects_quarantine with its reason; no row is both or neither."""
    now = live(url)
    for table in TABLES:
        migrated = {i: ws for i, (kind, ws) in outcomes[table].items() if kind == expected.MIGRATED}
        kept_aside = {i for i, (kind, _) in outcomes[table].items() if kind != expected.MIGRATED}
        extra = {i: ws for i, ws in now[table].items() if i not in outcomes[table]}    # written meanwhile
        assert {i: ws for i, ws in now[table].items() if i in outcomes[table]} == migrated, table
        quarantined = dict(query(url, 'SELECT "id", reason FROM projects_quarantine.{t}', t=table))
        assert set(quarantined) == kept_aside, table
        assert not set(quarantined) & set(now[table]) and all(ws is not None for ws in extra.values())
        collisions = {i for i, (kind, _) in outcomes[table].items() if kind == expected.COLLISION}
        assert all("collision" in quarantined[i] for i in collisions), table


class OldServer(threading.Thread):
    """An application server of the old version: it keeps writing tasks, comments and attachments
    without a workspaceId, each its own transaction, until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.written, self.errors = url, threading.Event(), [], []

    def run(self) -> None:
        n = 0
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                n += 1
                try:
                    conn.execute("""INSERT INTO "Task" ("id", "projectId", "title", "updatedAt")
                                    VALUES (%s, 'prj_1_1', 'written meanwhile', now())""", [f"tsk_old_{n}"])
                    conn.execute("""INSERT INTO "Comment" ("id", "taskId", "authorId", "body", "updatedAt")
                                    VALUES (%s, %s, 'usr_00000002', 'meanwhile', now())""",
                                 [f"cmt_old_{n}", f"tsk_old_{n}"])
                    conn.execute("""INSERT INTO "Attachment" ("id", "commentId", "uploaderId", "fileName",
                                                              "contentType", "sizeBytes", "storageKey")
                                    VALUES (%s, NULL, 'usr_00000040', 'f', 'text/plain', 1, %s)""",
                                 [f"att_old_{n}", f"k_old_{n}"])
                    self.written.append(n)
                except psycopg.Error as exc:      # e.g. a lock_timeout of a DDL step queued it: told, not hidden
                    self.errors.append(str(exc))
                time.sleep(0.02)


def test_the_whole_runbook_on_the_projects_app_then_rollback_and_restore(database, tmp_path):
    url = seed_projects(database)
    with psycopg.connect(url) as conn:
        outcomes = expected.expected_outcomes(conn)
    before = {t: rows(url, t) for t in TABLES}
    book = runbook(tmp_path, "projects-tenancy", STAGES, on_collision="quarantine", on_orphan="quarantine")
    writer = OldServer(url)
    writer.start()
    try:
        result = cli("run", book, "--run-dir", tmp_path / "run", url=url, timeout=600)
    finally:
        writer.stop.set()
        writer.join(10)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stage_lines(result.stdout) == {s: "ok" for s in STAGES}
    assert_migrated_as_expected(url, outcomes)
    assert writer.written and not writer.errors, writer.errors[:3]
    meanwhile = live(url)
    assert all(meanwhile["Task"][f"tsk_old_{n}"] == meanwhile["Project"]["prj_1_1"] for n in writer.written)
    assert all(meanwhile["Attachment"][f"att_old_{n}"] == meanwhile["Project"]["prj_40_1"] for n in writer.written)
    assert query(url, """SELECT DISTINCT is_nullable FROM information_schema.columns
                         WHERE table_schema = 'public' AND column_name = 'workspaceId' AND table_name = ANY(%s)""", [list(TABLES)]) == [("NO",)]
    assert query(url, "SELECT migration_name FROM tenancy_runbook.applied_migrations ORDER BY 1") == [
        ("20260112090000_add_workspace_to_projects_models",), ("20260112091000_projects_workspace_not_null",)]

    # the evidence: the manifest names the projects spec; no notebook speaks of Data Hub's tables
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["spec"]["name"] == "projects" and manifest["spec"]["sha256"]
    for stage in STAGES:
        text = notebook_text(tmp_path / "run" / f"{stage}.ipynb")
        assert "Tenancy spec 'projects'" in text, stage
        assert not [n for n in DATAHUB_NAMES if n in text], (stage, [n for n in DATAHUB_NAMES if n in text])

    # the old servers are gone: once the guard has placed nothing for quiet_period, finish removes it
    time.sleep(1.2)
    finish = runbook(tmp_path, "projects-finish", ["60_remove_guard"], quiet_period="1s")
    finished = cli("run", finish, "--run-dir", tmp_path / "finished", url=url)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert query(url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenancy_runbook_%'") == [(0,)]
    evidence = notebook_text(tmp_path / "finished" / "60_remove_guard.ipynb")
    assert "Removed the transition guard from " + ", ".join(TABLES) in evidence
    assert "Task: " in evidence and "Attachment: " in evidence          # what the old server wrote, counted
    with pytest.raises(psycopg.errors.NotNullViolation):                 # now NOT NULL rejects such a write
        query(url, """INSERT INTO "Task" ("id", "projectId", "title", "updatedAt")
                      VALUES ('tsk_late', 'prj_1_1', 'late', now())""")

    # rollback, and every quarantined row back exactly as it was
    back = runbook(tmp_path, "projects-rollback", ["90_rollback"], restore_quarantine="true", confirm="true")
    rolled = cli("run", back, "--run-dir", tmp_path / "rollback", url=url)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert query(url, """SELECT DISTINCT is_nullable FROM information_schema.columns
                         WHERE table_schema = 'public' AND column_name = 'workspaceId' AND table_name = ANY(%s)""", [list(TABLES)]) == [("YES",)]
    after = {t: {i: r for i, r in rows(url, t).items() if "_old_" not in i} for t in TABLES}
    assert after == before, "every row back exactly as it was, quarantined ones included"
    for stage, folder in (("60_remove_guard", "finished"), ("90_rollback", "rollback")):
        text = notebook_text(tmp_path / folder / f"{stage}.ipynb")
        assert not [n for n in DATAHUB_NAMES if n in text], (stage, [n for n in DATAHUB_NAMES if n in text])
    (written,) = (tmp_path / "rollback").glob("*_projects_workspace_not_null_rollback/migration.sql")
    assert 'ALTER TABLE "Label" ALTER COLUMN "workspaceId" DROP NOT NULL;' in written.read_text()


def test_killed_in_the_backfill_of_a_grandchild_table_the_run_resumes(database, tmp_path):
    """Killed while Comment (two levels below Project) is half done: the resumed run places every
    row exactly as a run that was never killed would."""
    url = seed_projects(database, users=600)
    with psycopg.connect(url) as conn:
        outcomes = expected.expected_outcomes(conn)
    placeable = sum(kind == expected.MIGRATED for kind, _ in outcomes["Comment"].values())
    book = runbook(tmp_path, "projects-tenancy", STAGES, on_collision="quarantine", on_orphan="quarantine",
                   batch_size=200, min_batch_size=200, max_batch_size=200, batch_pause_ms=20)
    proc = subprocess.Popen([sys.executable, "-m", "tenancy_runbook", "run", str(book),
                             "--run-dir", str(tmp_path / "killed")],
                            cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            done = query(url, """SELECT CASE WHEN to_regclass('"Comment"') IS NULL THEN 0 ELSE
                                 (SELECT count(*) FROM "Comment" WHERE to_jsonb("Comment") ->> 'workspaceId' IS NOT NULL)
                                 END""")[0][0]
            if done >= placeable // 2:
                break
            time.sleep(0.05)
    finally:
        kill_run(proc)
    done = query(url, 'SELECT count("workspaceId") FROM "Comment"')[0][0]
    assert placeable // 2 <= done < placeable, "killed with Comment half done"

    resumed = cli("run", book, "--run-dir", tmp_path / "resumed", url=url, timeout=600)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_migrated_as_expected(url, outcomes)


@pytest.mark.parametrize("choice", ["on_collision", "on_orphan"])
def test_the_projects_run_refuses_what_it_must_not_decide_alone(database, tmp_path, choice):
    """With the defaults (fail), the label collisions and the rows the rule cannot place stop the
    run before anything is written, naming the projects app's own tables and keys."""
    url = seed_projects(database)
    other = {"on_collision": "on_orphan", "on_orphan": "on_collision"}[choice]
    book = runbook(tmp_path, "projects-tenancy", STAGES, **{other: "quarantine"})
    result = cli("run", book, "--run-dir", tmp_path / "run", url=url)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert (("Label" in said and "name" in said) if choice == "on_collision"
            else "cannot place" in said and "projects_quarantine" in said), said
    assert not [n for n in DATAHUB_NAMES if n in said], said
    assert query(url, """SELECT count(*) FROM information_schema.columns
                         WHERE column_name = 'workspaceId' AND table_name = ANY(%s)""", [list(TABLES)]) == [(0,)]
