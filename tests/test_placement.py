"""How a row gets its tenant, made from the spec (placement.py, sql/backfill/value_*.sql): the
batches of both passes and the transition guard, on Data Hub and on the second app
(tests/apps/projects/, tests/specs/projects.spec.yaml) with no code of its own."""

from __future__ import annotations

import psycopg
import pytest
from conftest import PROJECTS_SPEC, projects_expected, query, seed_projects
from psycopg import sql

from tenancy_runbook import db, paths, placement, spec
from tenancy_runbook.locks import DDLLog, RetryPolicy
from tenancy_runbook.stages import add_workspace_columns, backfill

SPEC = PROJECTS_SPEC
# databases where every migrated table spans 25 heap pages or more: the planner sees tables, not a
# handful of pages it would rightly read whole (about 34,000 and 72,000 rows; 2-4 s to seed)
LARGER_PROJECTS = dict(users=1000, shared_pairs=40, labels_per_user=4)
LARGER_DATAHUB = dict(users=1500, metric_days=5, insights_per_user=3, messages_per_user=20)
POLICY = backfill.BatchPolicy(batch_size=7, min_batch_size=5, max_batch_size=9)
expected = projects_expected()


@pytest.fixture
def projects_spec(monkeypatch):
    """The projects spec is the run's (as the runner names it to its kernels)."""
    monkeypatch.setenv(paths.SPEC_ENV, str(SPEC))
    return spec.active()


def migrate(url: str) -> None:
    """Migration 1 and the guard, as stages 10 and 20 make them."""
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())


def remove_collision_losers(url: str) -> None:
    """What 20_backfill's on_collision quarantine does first, here by hand: the losing labels go."""
    with psycopg.connect(url) as conn:
        losers = [i for c in expected.label_collisions(conn) for i in c["losers"]]
        assert losers, "the seed must make label collisions"
        conn.execute('DELETE FROM "Label" WHERE "id" = ANY(%s)', [losers])


def prepared(database: str) -> tuple[str, dict]:
    """A seeded projects database after migration 1 and the guard, its collision losers gone; and
    the workspace expected.py says each row must get (worked out before anything ran)."""
    url = seed_projects(database)
    with psycopg.connect(url) as conn:
        want = expected.expected_workspaces(conn)
    remove_collision_losers(url)
    migrate(url)
    return url, want


def workspaces(url: str) -> dict:
    return {t: dict(query(url, 'SELECT "id", "workspaceId" FROM {t}', t=t)) for t in expected.TABLES}


def plan(conn, statement: sql.Composable, params: dict) -> str:
    return "\n".join(row["QUERY PLAN"] for row in conn.execute(sql.SQL("EXPLAIN ") + statement, params))


def test_each_derivation_places_rows_as_the_projects_app_says(database, projects_spec):
    """Both passes and every worker count, on two levels of parents (Comment -> Task -> Project) and a
    parent-else-user table whose parent is a child itself (Attachment -> Comment): every row gets
    exactly expected.py's workspace, the unplaceable ones none."""
    url, want = prepared(database)
    with db.connect(url) as conn:
        totals, batches = backfill.run(conn, backfill.BatchPolicy(batch_size=7, min_batch_size=5,
                                                                  max_batch_size=9, workers=2), progress=False)
    got = workspaces(url)
    for table in expected.TABLES:
        assert got[table] == {i: ws for i, ws in want[table].items() if i in got[table]}, table
    assert len(got["Label"]) == len(want["Label"]) - sum(ws is None and i not in got["Label"]
                                                         for i, ws in want["Label"].items())
    assert set(batches["table"]) == set(expected.TABLES)
    assert list(totals["table"]) == list(expected.TABLES)          # the spec's order: parents first
    unplaceable = {t: sum(ws is None for ws in got[t].values()) for t in expected.TABLES}
    assert unplaceable == {"Project": 6, "Task": 24, "Comment": 48, "Attachment": 9, "Label": 9}


def test_the_keyset_pass_alone_gives_the_same_answer(database, projects_spec):
    url, want = prepared(database)
    with db.connect(url) as conn:
        for step in placement.steps():
            backfill._keyset_pass(conn, step.table, step.keyset, POLICY, [], [])
    got = workspaces(url)
    for table in expected.TABLES:
        assert got[table] == {i: ws for i, ws in want[table].items() if i in got[table]}, table


def test_the_guard_places_what_an_old_server_writes_by_the_projects_rules(database, projects_spec):
    """Rows written without a workspaceId after the guard is on: a task of a placed project, a
    comment on it, an attachment on that comment, one without a comment (its uploader's), one on a
    comment that has no workspace (no fallback: NULL, counted as unplaced)."""
    url, _ = prepared(database)
    with db.connect(url) as conn:
        backfill.run(conn, backfill.BatchPolicy(), progress=False)
    with psycopg.connect(url) as conn:    # as the application writes: no workspaceId
        conn.execute("""INSERT INTO "Task" ("id", "projectId", "title", "updatedAt")
                        VALUES ('tsk_new', 'prj_1_1', 'new', now())""")
        conn.execute("""INSERT INTO "Comment" ("id", "taskId", "authorId", "body", "updatedAt")
                        VALUES ('cmt_new', 'tsk_new', 'usr_00000002', 'hi', now())""")
        conn.execute("""INSERT INTO "Attachment" ("id", "commentId", "uploaderId", "fileName", "contentType",
                                                  "sizeBytes", "storageKey")
                        VALUES ('att_new_1', 'cmt_new', 'usr_00000040', 'a', 'text/plain', 1, 'k1'),
                               ('att_new_2', NULL, 'usr_00000040', 'b', 'text/plain', 1, 'k2'),
                               ('att_new_3', 'cmt_43_1_1_1', 'usr_00000001', 'c', 'text/plain', 1, 'k3')""")
    got = workspaces(url)
    project = got["Project"]["prj_1_1"]
    assert project is not None
    assert got["Task"]["tsk_new"] == got["Comment"]["cmt_new"] == got["Attachment"]["att_new_1"] == project
    assert got["Attachment"]["att_new_2"] == got["Project"]["prj_40_1"]           # the uploader's
    assert got["Comment"]["cmt_43_1_1_1"] is None and got["Attachment"]["att_new_3"] is None
    counts = dict(query(url, """SELECT table_name, sum(placed)::int || '/' || sum(unplaced)::int
                               FROM tenancy_runbook.guard_placements WHERE table_name <> '*'
                               GROUP BY table_name"""))
    assert counts == {"Task": "1/0", "Comment": "1/0", "Attachment": "2/1"}


@pytest.mark.parametrize("spec_path", [paths.DEFAULT_SPEC, SPEC], ids=["datahub", "projects"])
def test_no_batch_of_any_table_of_either_spec_reads_the_whole_table(datahub, database, monkeypatch, spec_path):
    """The hand-tuned plans hold for every table the spec makes: a first-pass batch is a TID range
    scan, a second-pass batch finds its rows through the primary key, never a sequential scan of
    the table, with fresh statistics, as the planner sees them in production."""
    monkeypatch.setenv(paths.SPEC_ENV, str(spec_path))
    url = seed_projects(database, **LARGER_PROJECTS) if spec_path == SPEC else datahub(**LARGER_DATAHUB)
    migrate(url)
    s = spec.active()
    with db.connect(url) as conn:
        for step in placement.steps(s):
            db.execute(conn, "backfill/analyze", table=step.table)
            assert int(db.one(conn, "backfill/extent", {"table": step.table})["pages"]) >= 25, step.table
            key = f"{step.table}_pkey"
            seq_scan = f'Seq Scan on "{step.table}"'
            by_pages = plan(conn, step.pages, {"lo": "(1,0)", "hi": "(3,0)"})
            by_key = plan(conn, step.keyset, {"after": "", "size": 50, "upto": None})
            in_range = plan(conn, step.keyset, {"after": "", "size": 50, "upto": "z"})
            assert seq_scan not in by_pages and "Tid Range Scan" in by_pages, (step.table, by_pages)
            assert seq_scan not in by_key and key in by_key, (step.table, by_key)
            assert seq_scan not in in_range and key in in_range, (step.table, in_range)


def test_the_guard_function_is_made_from_the_spec_and_names_no_other_table(projects_spec):
    text = placement.place_function(projects_spec).as_string(None)
    for table in expected.TABLES:
        assert f"WHEN '{table}' THEN" in text
    assert '"Connection"' not in text and '"MetricDaily"' not in text
    rule = placement.rule_function(projects_spec).as_string(None)
    assert '"defaultWorkspaceId"' in rule and "'OWNER'" in rule


def test_a_rule_given_as_a_sql_file_makes_the_guards_function(datahub, tmp_path, monkeypatch):
    """``user_rule: {kind: sql}``: the function the guard and the batches call is made over the
    spec's own SELECT (guard_rule_set.sql), and gives every user what Data Hub's own form gives."""
    url = datahub(users_without_default=3, orphans=1, ambiguous=1)
    rule = tmp_path / "user_workspace.sql"
    datahub_spec = spec.load(paths.DEFAULT_SPEC)                   # its set form, written out as a file
    rule.write_text(db.load_sql("common/user_workspace", **datahub_spec.rule_identifiers()).as_string(None)
                    .replace("%(owner)s", "'OWNER'"))
    assert "tenant_id" in rule.read_text() and "{" not in rule.read_text()
    text = paths.DEFAULT_SPEC.read_text()
    start, end = text.index("user_rule:"), text.index("\n# The backfill order")
    text = (text[:start] + f"user_rule:\n  kind: sql\n  sql: {rule}\n" + text[end:]).replace(
        "../sql/migrations", str(paths.DEFAULT_SPEC.parent.parent / "sql" / "migrations"))
    (tmp_path / "sql_rule.spec.yaml").write_text(text)
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())       # Data Hub's default_else_owner form
        by_default_else_owner = dict(query(url, 'SELECT "id", tenancy_runbook.user_workspace("id") FROM "User"'))
        monkeypatch.setenv(paths.SPEC_ENV, str(tmp_path / "sql_rule.spec.yaml"))
        assert spec.active().user_rule.kind == "sql"
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
    by_sql_file = dict(query(url, 'SELECT "id", tenancy_runbook.user_workspace("id") FROM "User"'))
    assert by_sql_file == by_default_else_owner
    assert None in by_sql_file.values() and len(set(by_sql_file.values())) > 3
    assert "rule.tenant_id" in query(url, "SELECT prosrc FROM pg_proc WHERE proname = 'user_workspace'")[0][0]
