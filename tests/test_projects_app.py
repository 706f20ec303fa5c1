"""The second app (tests/apps/projects/): its schema, seed and Prisma migrations run on the test
server, and expected.py's outcome agrees with what its README promises. The fixture the generic
engine (issue 12) is proven on: the stages that derive from the tenancy spec (10, 40, 50, 90) reach
Prisma's schema on it with no code of their own for it."""

import hashlib
import re
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import (PROJECTS_APP, PROJECTS_SPEC, cli, notebook_text, projects_expected, query, schema_snapshot,
                      load_projects_schema, seed_projects)
from psycopg import sql

from tenancy_runbook import db, demo, paths, quarantine
from tenancy_runbook.stages import check_backfill, preflight

APP, SPEC = PROJECTS_APP, PROJECTS_SPEC
expected = projects_expected()


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
        load_projects_schema(url)
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
    return seed_projects(database)


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


def _snapshot(url: str, schema: str = "public") -> dict:
    """{table: {id: the whole row as text}} of the five tables, live or quarantined (the quarantine's
    own columns left out)."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in expected.TABLES:
            if not conn.execute("SELECT to_regclass(%s)", [f'{schema}."{table}"']).fetchone()[0]:
                out[table] = {}
                continue
            cols = [c for (c,) in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
                "AND NOT attisdropped AND attname NOT IN ('reason', 'run_id', 'quarantined_at') ORDER BY attname",
                [f'"{table}"']).fetchall()]
            statement = sql.SQL("SELECT id, ROW({})::text FROM {}").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(schema, table))
            out[table] = dict(conn.execute(statement).fetchall())
    return out


def _placed(projects: str) -> dict:
    """Migration 1 applied, every row the rule places given its workspace by plain UPDATEs (the
    collision losers and the unplaceable rows left NULL); the outcome expected.py computed before."""
    with psycopg.connect(projects) as conn:
        outcomes = expected.expected_outcomes(conn)
    with psycopg.connect(projects, autocommit=True) as conn:
        conn.execute(_migration("add_workspace_to_projects_models"))
        for table in expected.TABLES:
            for row_id, (_, workspace) in outcomes[table].items():
                if workspace is not None:
                    conn.execute(sql.SQL('UPDATE {} SET "workspaceId" = %s WHERE "id" = %s').format(
                        sql.Identifier(table)), [workspace, row_id])
    return outcomes


def test_preflight_finds_the_label_collisions_and_the_unplaceable_users_from_the_spec(projects, monkeypatch):
    """Generic collisions (projected through the rule, the winner first) and unplaceable users
    (their rows counted through every level of parents), before migration 1 and after a partial
    backfill, agree with expected.py."""
    monkeypatch.setenv(paths.SPEC_ENV, str(SPEC))
    with psycopg.connect(projects) as conn:
        collisions = expected.label_collisions(conn)
        outcomes = expected.expected_outcomes(conn)
    want = [("Label", c["workspaceId"], c["name"], [c["winner"], *c["losers"]]) for c in collisions]
    unplaceable = {t: sum(o == expected.UNPLACEABLE for o, _ in rows.values()) for t, rows in outcomes.items()}
    assert len(want) == 9 and unplaceable["Comment"] == 48
    for moment in ("before migration 1", "after a partial backfill"):
        with db.connect(projects) as conn:
            found = preflight.collisions(conn)
            users = preflight.unplaceable_users(conn)
        got = [(r["table"], r["workspaceId"], r["name"], list(r["ids"])) for r in found.to_dict("records")]
        # the ids after the winner are in the winner's order; expected.py lists the losers sorted
        assert [(t, w, n, ids[:1] + sorted(ids[1:])) for t, w, n, ids in got] == want, moment
        assert list(users.columns) == ["user_id", "kind", "owned_tenants", *expected.TABLES], moment
        assert users[["user_id", "kind", "owned_tenants"]].values.tolist() == [
            ["usr_00000043", "ambiguous", 2], ["usr_00000041", "orphan", 0], ["usr_00000042", "orphan", 0]], moment
        assert preflight.unplaceable_rows(users) == unplaceable, moment
        problems = preflight.problems(found, users)
        assert "9 (workspaceId, name) collision(s) over 18 Label rows" in problems[0]
        assert "Label_workspaceId_name_key" in problems[0] and "move their rows to projects_quarantine" in problems[1]
        if moment == "before migration 1":
            _placed(projects)


def test_check_backfill_on_the_projects_spec(projects, monkeypatch):
    """Duplicates per unique key and the rule per derivation (user, two levels of parent,
    parent_else_user), on the projects app."""
    monkeypatch.setenv(paths.SPEC_ENV, str(SPEC))
    _placed(projects)
    with db.connect(projects) as conn:
        assert check_backfill.rule_mismatches(conn).values.tolist() == [[t, 0] for t in expected.TABLES]
        assert check_backfill.duplicates(conn).empty
    query(projects, """UPDATE "Comment" SET "workspaceId" = 'ws_2' WHERE id = 'cmt_1_1_1_1'""")      # not its task's
    query(projects, """UPDATE "Attachment" SET "workspaceId" = 'ws_2' WHERE id = 'att_40_3'""")   # not its comment's
    query(projects, """UPDATE "Label" SET "workspaceId" = 'ws_2' WHERE id = 'lbl_00000011_1'""")    # not its creator's
    query(projects, """UPDATE "Label" SET "workspaceId" = 'ws_2' WHERE id = 'lbl_00000002_2'""")    # its creator OWNS ws_2
    query(projects, 'DROP INDEX "Label_workspaceId_name_key"')
    query(projects, """UPDATE "Label" SET "workspaceId" = 'ws_1' WHERE id = 'lbl_00000001_1'""")    # a loser, placed
    with db.connect(projects) as conn:
        mismatches = dict(check_backfill.rule_mismatches(conn).values.tolist())
        dups = check_backfill.duplicates(conn)
        by_name = check_backfill.duplicates_by_value(dups, conn)
    # att_1_2 is on cmt_1_1_1_1, whose workspace changed: it disagrees with its comment now
    assert mismatches == {"Project": 0, "Task": 0, "Comment": 1, "Attachment": 2, "Label": 1}
    assert dups[["table", "workspaceId", "name", "rows"]].values.tolist() == [["Label", "ws_1", "bug", 2]]
    assert list(dups["ids"][0]) == ["lbl_00000002_1", "lbl_00000001_1"]
    assert list(by_name.columns) == ["name", "groups"] and by_name["groups"].sum() == 1


def test_quarantine_moves_leaves_first_and_restores_every_row_exactly(projects, monkeypatch):
    """quarantine.collisions + quarantine.unplaced move exactly the rows expected.py says cannot be
    migrated (a Comment's Attachments before it: Attachment.commentId is ON DELETE SET NULL), into
    projects_quarantine; quarantine.restore puts every row back as it was."""
    monkeypatch.setenv(paths.SPEC_ENV, str(SPEC))
    outcomes = _placed(projects)
    before = _snapshot(projects)
    with db.connect(projects) as conn:
        found = preflight.collisions(conn)
        kept = quarantine.collisions(conn, found, "run")
        moved = quarantine.unplaced(conn, "run")
    assert list(kept.columns) == ["table", "index", "workspaceId", "name", "kept", "moved"]
    assert len(kept) == 9 and list(moved["table"]) == ["Attachment", "Comment", "Task", "Label", "Project"]
    live, gone = _snapshot(projects), _snapshot(projects, "projects_quarantine")
    for table in expected.TABLES:
        assert set(live[table]) == {i for i, (o, _) in outcomes[table].items() if o == expected.MIGRATED}, table
        assert set(gone[table]) == {i for i, (o, _) in outcomes[table].items() if o != expected.MIGRATED}, table
        assert {**live[table], **gone[table]} == before[table], table    # nothing changed on the way
    reasons = dict(query(projects, 'SELECT id, reason FROM projects_quarantine."Label"'))
    assert reasons["lbl_00000001_1"].startswith("collision on (workspaceId, name) = (ws_1, bug): kept lbl_00000002_1")
    assert reasons["lbl_00000041_1"].startswith("no Workspace by the backfill rule")
    with db.connect(projects) as conn:
        restored = quarantine.restore(conn)
    assert list(restored["table"]) == list(expected.TABLES)
    assert _snapshot(projects) == before
    assert all(not rows for rows in _snapshot(projects, "projects_quarantine").values())


def test_a_collision_loser_takes_every_row_below_it_leaves_first(projects, monkeypatch):
    """Moving a Project moves its Tasks, their Comments and those Comments' Attachments first (the
    deepest first), and a restore brings them back, the Attachments' commentId intact."""
    monkeypatch.setenv(paths.SPEC_ENV, str(SPEC))
    before = _snapshot(projects)
    with db.connect(projects) as conn:
        moved = quarantine.move_rows(conn, "Project", ["prj_1_1"], "test", "run")
    tasks = {i for i in before["Task"] if i.startswith("tsk_1_1_")}
    comments = {i for i in before["Comment"] if i.startswith("cmt_1_1_")}
    attachments = set(query(projects, """SELECT id FROM projects_quarantine."Attachment" """))
    assert moved == {"Project": 1, "Task": len(tasks), "Comment": len(comments), "Attachment": len(attachments),
                     "Label": 0}
    assert {"att_1_2", "att_2_3"} == {i for (i,) in attachments}    # on cmt_1_1_1_1 and cmt_1_1_1_2
    assert query(projects, """SELECT count(*) FROM projects_quarantine."Attachment" WHERE "commentId" IS NULL""") == [(0,)]
    with db.connect(projects) as conn:
        quarantine.restore(conn)
    assert _snapshot(projects) == before
