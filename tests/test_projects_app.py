"""The second app (tests/apps/projects/): its schema, seed and Prisma migrations run on the test
server, and expected.py's outcome agrees with what its README promises. The fixture the generic
engine (issue 12) is proven on: the stages that derive from the tenancy spec (10, 40, 50, 90) reach
Prisma's schema on it with no code of their own for it."""

import hashlib
import importlib.util
import re
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import cli, notebook_text, query, schema_snapshot
from psycopg import sql

from tenancy_runbook import demo

APP = Path(__file__).parent / "apps" / "projects"
SPEC = Path(__file__).parent / "specs" / "projects.spec.yaml"


def _expected():
    spec = importlib.util.spec_from_file_location("projects_expected", APP / "expected.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


expected = _expected()


def _migration(prefix: str) -> str:
    (folder,) = (APP / "migrations").glob(f"*_{prefix}")
    return (folder / "migration.sql").read_text()


def _runbook(path: Path, *stages: str, parameters: str = "") -> Path:
    """A runbook naming the projects spec, running ``stages`` (a stage's parameters: ``parameters``,
    YAML lines under its entry)."""
    lines = [f"name: projects\nspec: {SPEC}\nstages:"] + [f"  - notebook: {s}" for s in stages]
    path.write_text("\n".join(lines) + "\n" + parameters)
    return path


def _place_by_hand(conn, outcome: dict) -> None:
    """The backfill's end state by plain statements, from expected.py's ``outcome``: the rows the
    rule cannot place (and collision losers) deleted, every other row given its workspace."""
    for table in reversed(expected.TABLES):                         # leaves first: no cascade decides
        for row_id, workspace in outcome[table].items():
            if workspace is None:
                conn.execute(sql.SQL('DELETE FROM {} WHERE "id" = %s').format(sql.Identifier(table)), [row_id])
    for table in expected.TABLES:
        for row_id, workspace in outcome[table].items():
            if workspace is not None:
                conn.execute(sql.SQL('UPDATE {} SET "workspaceId" = %s WHERE "id" = %s').format(sql.Identifier(table)),
                             [workspace, row_id])


@pytest.fixture
def plain(server_url):
    """An empty database with the projects schema before migration 1: Prisma's migrations replayed
    on it give the schema a stage must reach."""
    name = f"trb_plain_{uuid.uuid4().hex[:8]}"
    url = demo.create_database(server_url, name)
    try:
        _apply(url, (APP / "schema.sql").read_text())
        yield url
    finally:
        demo.drop_database(server_url, name)


def _apply(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def projects(database):
    """A projects database before migration 1, seeded with the defaults."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute((APP / "schema.sql").read_text())
    with psycopg.connect(database) as conn:     # one transaction: seed.sql's temp tables drop at COMMIT
        conn.execute((APP / "seed.sql").read_text(), prepare=False)
    return database


def test_the_default_seed_has_the_outcomes_its_readme_states(projects):
    with psycopg.connect(projects) as conn:
        counts = expected.summary(conn)
        outcomes = expected.expected_outcomes(conn)
    M, U, C = expected.MIGRATED, expected.UNPLACEABLE, expected.COLLISION
    assert counts == {"Project": {M: 80, U: 6, C: 0}, "Task": {M: 320, U: 24, C: 0},
                      "Comment": {M: 640, U: 48, C: 0}, "Attachment": {M: 120, U: 9, C: 0},
                      "Label": {M: 111, U: 9, C: 9}}
    # the traps the README names: the source column decides, not the other user columns
    assert outcomes["Task"]["tsk_43_1_2"] == (U, None)          # assignee placeable, project not
    assert outcomes["Task"]["tsk_40_1_2"] == (M, "ws_40")       # assignee an orphan, project placeable
    assert outcomes["Attachment"]["att_1_1"] == (M, "ws_1")     # no comment: the uploader's
    assert outcomes["Attachment"]["att_1_3"] == (U, None)       # a comment without a workspace: no fallback
    assert outcomes["Attachment"]["att_40_3"] == (M, "ws_39")   # the comment's, not the uploader's


def test_prismas_migrations_apply_once_the_rows_the_rule_cannot_place_are_gone(projects):
    with psycopg.connect(projects) as conn:
        outcome = expected.expected_workspaces(conn)
    with psycopg.connect(projects, autocommit=True) as conn:
        conn.execute(_migration("add_workspace_to_projects_models"))    # all NULL: no unique conflict yet
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(_migration("projects_workspace_not_null"))     # migration 2 before any backfill
        _place_by_hand(conn, outcome)
        conn.execute(_migration("projects_workspace_not_null"))
        left = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in expected.TABLES}
    assert left == {"Project": 80, "Task": 320, "Comment": 640, "Attachment": 120, "Label": 111}


def test_10_add_workspace_columns_reaches_prismas_schema_from_the_projects_spec(projects, plain, tmp_path):
    """Stage 10 derives every column, index and foreign key from the spec: on the projects app, with
    no stage code of its own, it reaches exactly the schema Prisma's migration 1 gives, online."""
    result = cli("run", _runbook(tmp_path / "projects.yaml", "10_add_workspace_columns"), "--run-dir",
                 tmp_path / "run", url=projects)
    assert result.returncode == 0, result.stdout + result.stderr
    _apply(plain, _migration("add_workspace_to_projects_models"))
    assert schema_snapshot(projects) == schema_snapshot(plain)
    assert query(projects, "SELECT migration_name FROM tenancy_runbook.applied_migrations") == [
        ("20260112090000_add_workspace_to_projects_models",)]


def _is_nullable(url: str) -> dict:
    """The tenant column's is_nullable on each of the spec's tables."""
    return dict(query(url, """SELECT table_name, is_nullable FROM information_schema.columns
                              WHERE table_schema = 'public' AND column_name = 'workspaceId'
                                AND table_name = ANY(%s)""", [list(expected.TABLES)]))


def test_40_50_and_90_derive_from_the_projects_spec(projects, plain, tmp_path, monkeypatch):
    """Migration 2, its verification and its rollback take their tables, column, checks, indexes,
    foreign keys and migration names from the spec: on the projects app they reach exactly Prisma's
    migration 2, verify it, and roll it back to exactly <ts>_projects_workspace_not_null_rollback.
    The backfill is done by hand here (expected.py's outcome): 20_backfill still carries Data Hub's
    tables, and so does 40's last sweep (it batches only under 20's transition guard), so 40 runs
    as its module's apply(), in this process, under the projects spec."""
    from tenancy_runbook import db
    from tenancy_runbook.locks import DDLLog, RetryPolicy
    from tenancy_runbook.paths import SPEC_ENV
    from tenancy_runbook.stages import enforce_not_null

    with psycopg.connect(projects) as conn:
        outcome = expected.expected_workspaces(conn)
    result = cli("run", _runbook(tmp_path / "m1.yaml", "10_add_workspace_columns"), "--run-dir", tmp_path / "m1",
                 url=projects)
    assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(projects, autocommit=True) as conn:
        _place_by_hand(conn, outcome)

    monkeypatch.setenv(SPEC_ENV, str(SPEC))
    log = DDLLog()
    with db.connect(projects) as conn:
        assert enforce_not_null.apply(conn, RetryPolicy(), "test", log)["action"].startswith("applied")
    assert [s["step"] for s in log.steps][:4] == ["Project: add CHECK NOT VALID", "Project: validate CHECK",
                                                  "Project: SET NOT NULL", "Task: add CHECK NOT VALID"]
    assert _is_nullable(projects) == {t: "NO" for t in expected.TABLES}
    assert query(projects, "SELECT conname FROM pg_constraint WHERE conname LIKE 'tenancy_runbook_%'") == []
    recorded = query(projects, "SELECT migration_name, checksum FROM tenancy_runbook.applied_migrations "
                               "ORDER BY migration_name")
    m2 = _migration("projects_workspace_not_null")
    assert recorded[1:] == [("20260112091000_projects_workspace_not_null", hashlib.sha256(m2.encode()).hexdigest())]
    _apply(plain, _migration("add_workspace_to_projects_models"), m2)
    assert schema_snapshot(projects) == schema_snapshot(plain)      # Prisma's migration 2, exactly

    verify = _runbook(tmp_path / "verify.yaml", "50_post_verify",
                      parameters="    parameters:\n      unique_index: Label_workspaceId_name_key\n")
    result = cli("run", verify, "--run-dir", tmp_path / "verify", url=projects)
    assert result.returncode == 0, result.stdout + result.stderr
    text = notebook_text(tmp_path / "verify" / "50_post_verify.ipynb")
    assert "Post-verify passed: 20 checks." in text       # 5 columns, 5 indexes, 5 foreign keys, 5 counts
    assert "Comment_workspaceId_createdAt_idx exists, valid" in text

    back = _runbook(tmp_path / "back.yaml", "90_rollback", parameters="    parameters:\n      confirm: true\n")
    result = cli("run", back, "--run-dir", tmp_path / "back", url=projects)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _is_nullable(projects) == {t: "YES" for t in expected.TABLES}
    (folder,) = [p for p in (tmp_path / "back").iterdir() if p.is_dir()]
    assert re.fullmatch(r"[0-9]{14}_projects_workspace_not_null_rollback", folder.name), folder.name
    rollback = (folder / "migration.sql").read_text()
    assert rollback == m2.replace("SET NOT NULL", "DROP NOT NULL")
    recorded = query(projects, "SELECT migration_name, checksum FROM tenancy_runbook.applied_migrations "
                               "ORDER BY migration_name")
    assert recorded[2:] == [(folder.name, hashlib.sha256(rollback.encode()).hexdigest())]
    _apply(plain, rollback)
    assert schema_snapshot(projects) == schema_snapshot(plain)      # the history agrees with the database
