"""The second app (tests/apps/projects/): its schema, seed and Prisma migrations run on the test
server, and expected.py's outcome agrees with what its README promises. The fixture the generic
engine (issue 12) is to be proven on; here it is only the app, before any runbook touches it."""

import importlib.util
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import cli, query, schema_snapshot
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
        for table in reversed(expected.TABLES):                         # leaves first: no cascade decides
            for row_id, workspace in outcome[table].items():
                if workspace is None:
                    conn.execute(sql.SQL('DELETE FROM {} WHERE "id" = %s').format(sql.Identifier(table)), [row_id])
        for table in expected.TABLES:
            for row_id, workspace in outcome[table].items():
                if workspace is not None:
                    conn.execute(sql.SQL('UPDATE {} SET "workspaceId" = %s WHERE "id" = %s').format(sql.Identifier(table)),
                                 [workspace, row_id])
        conn.execute(_migration("projects_workspace_not_null"))
        left = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in expected.TABLES}
    assert left == {"Project": 80, "Task": 320, "Comment": 640, "Attachment": 120, "Label": 111}


def test_10_add_workspace_columns_reaches_prismas_schema_from_the_projects_spec(projects, server_url, tmp_path):
    """Stage 10 derives every column, index and foreign key from the spec: on the projects app, with
    no stage code of its own, it reaches exactly the schema Prisma's migration 1 gives, online."""
    book = tmp_path / "projects.yaml"
    book.write_text(f"name: projects\nspec: {SPEC}\nstages:\n  - notebook: 10_add_workspace_columns\n")
    result = cli("run", book, "--run-dir", tmp_path / "run", url=projects)
    assert result.returncode == 0, result.stdout + result.stderr
    name = f"trb_plain_{uuid.uuid4().hex[:8]}"
    plain = demo.create_database(server_url, name)
    try:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute((APP / "schema.sql").read_text())
            conn.execute(_migration("add_workspace_to_projects_models"))
        assert schema_snapshot(projects) == schema_snapshot(plain)
    finally:
        demo.drop_database(server_url, name)
    assert query(projects, "SELECT migration_name FROM tenancy_runbook.applied_migrations") == [
        ("20260112090000_add_workspace_to_projects_models",)]
