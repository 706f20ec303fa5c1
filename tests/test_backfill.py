"""The backfill's two passes, each on its own, and the plans that keep a batch from scanning the
whole table (the cost of one batch must not grow with the table): each test once per app (Data
Hub, and the projects app of tests/apps/projects/), each by its spec."""

from __future__ import annotations

import pytest
from conftest import actual_workspaces, expected_workspaces, run_runbook
from psycopg import sql

from tenancy_runbook import checks, db, placement, spec
from tenancy_runbook.locks import DDLLog, RetryPolicy
from tenancy_runbook.stages import add_workspace_columns, backfill

POLICY = backfill.BatchPolicy(batch_size=7, min_batch_size=5, max_batch_size=9)   # many small batches


@pytest.fixture
def migrated(app, seeded):
    """Columns added and the guard installed, nothing backfilled yet."""
    url = seeded(**app.rows(576), users_without_default=3, orphans=1, ambiguous=1)
    with db.connect(url) as conn:     # (the runbook's preflight would stop at the orphans)
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
    return url


@pytest.mark.parametrize("kind, workers", [("pages", 1), ("keyset", 1), ("pages", 2), ("keyset", 2)])
def test_each_pass_alone_places_every_row_by_the_rule(app, migrated, kind, workers):
    expected = expected_workspaces(migrated)
    assert any(ws is None for ws in expected[app.big].values()), "the seed must have unplaceable rows"
    batches = []
    policy = backfill.BatchPolicy(batch_size=7, min_batch_size=5, max_batch_size=9, workers=workers)
    with db.connect(migrated) as conn:
        for table, pages, keyset, _ in placement.steps():
            if kind == "pages":
                todo = int(checks.null_count(conn, table)["nulls"])
                backfill._page_pass(conn, table, pages, policy, batches, [], todo)
            else:
                backfill._keyset_pass(conn, table, keyset, policy, batches, [])
    assert actual_workspaces(migrated) == expected
    assert {b["pass"] for b in batches} == {kind}
    per_table = {t: sum(1 for b in batches if b["table"] == t) for t in app.tables}
    assert per_table[app.big] > 1 and min(per_table.values()) >= 1, per_table   # small tables: 1 page


def test_the_runbook_uses_the_page_pass_and_the_keyset_pass_only_for_what_is_left(app, migrated):
    with db.connect(migrated) as conn:
        totals, frame = backfill.run(conn, POLICY, progress=False)
    assert actual_workspaces(migrated) == expected_workspaces(migrated)
    unplaceable = {t: sum(ws is None for ws in rows.values()) for t, rows in expected_workspaces(migrated).items()}
    keyset = frame[frame["pass"] == "keyset"].groupby("table")["scanned"].sum().to_dict()
    # the second pass only ever sees the rows the rule cannot place
    assert keyset == {t: n for t, n in unplaceable.items() if n}, (keyset, unplaceable)
    assert frame[frame["pass"] == "keyset"]["updated"].sum() == 0
    assert set(frame[frame["pass"] == "pages"]["table"]) == set(app.tables)


def plan(conn, statement: sql.Composable, params: dict) -> str:
    query = sql.SQL("EXPLAIN ") + statement
    return "\n".join(row["QUERY PLAN"] for row in conn.execute(query, params))


# app -> (its table placed through a parent row, one placed through its user), and seed options
# that give them 72,000 and 36,000 rows (the projects app's Label cannot grow so, a user has at most
# 4 labels: its Project, placed through its owner, stands in)
PLANNED = {"datahub": (("MetricDaily", "ChatMessage"), dict(metric_days=1500, messages_per_user=3000)),
           "projects": (("Comment", "Project"), dict(projects_per_user=3000, tasks_per_project=1,
                                                     comments_per_task=2))}


def test_no_batch_reads_the_whole_table(app, seeded, tmp_path):
    """On tables of some size, with fresh statistics, as the planner sees them in production."""
    tables, options = PLANNED[app.name]
    url = seeded(**options)
    assert run_runbook(url, tmp_path / "run", "--to", "10_add_workspace_columns").returncode == 0
    plans = {}
    with db.connect(url) as conn:
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
        for table in tables:
            _, pages, keyset, _ = next(step for step in placement.steps() if step.table == table)
            db.execute(conn, "backfill/analyze", table=table)
            plans[table] = (plan(conn, pages, {"lo": "(10,0)", "hi": "(60,0)"}),
                            plan(conn, keyset, {"after": "", "size": 5000, "upto": None}),
                            plan(conn, keyset, {"after": "", "size": 5000, "upto": "z"}))   # several workers
    for table, (by_pages, by_key, in_range) in plans.items():
        seq_scan = f'Seq Scan on "{table}"'
        assert seq_scan not in by_pages and "Tid Range Scan" in by_pages, by_pages
        assert seq_scan not in by_key and f'{table}_pkey' in by_key, by_key
        assert seq_scan not in in_range and f'{table}_pkey' in in_range, in_range


def test_the_guards_function_agrees_with_the_rule_for_every_user(migrated):
    """The per-row function (sql/backfill/guard_rule.sql) and the set-based rule the checks include
    (sql/common/user_workspace.sql) are two forms of one rule."""
    with db.connect(migrated) as conn:
        s = spec.active()
        rule = {r["user_id"]: r["tenant_id"] for r in db.rows(
            conn, "common/user_workspace", {"owner": s.user_rule.membership.owner}, **s.rule_identifiers())}
        per_row = {r["id"]: r["ws"] for r in conn.execute(
            'SELECT "id", tenancy_runbook.user_workspace("id") AS ws FROM "User"')}
    assert rule == per_row
    assert None in rule.values() and len(set(rule.values())) > 3    # orphans, and many workspaces


def test_two_workers_take_disjoint_page_ranges_and_place_every_row(app, migrated):
    """backfill_workers 2: two connections, each batch its own range of pages; together they
    cover every page once (the batches that committed), and the result is the rule's."""
    policy = backfill.BatchPolicy(batch_size=7, min_batch_size=5, max_batch_size=9, workers=2)
    with db.connect(migrated) as conn:
        ends = {t: int(db.one(conn, "backfill/extent", {"table": t})["pages"]) for t in app.tables}
        totals, frame = backfill.run(conn, policy, progress=False)
    assert actual_workspaces(migrated) == expected_workspaces(migrated)
    pages = frame[(frame["pass"] == "pages") & frame["error"].isna()]
    for table, part in pages.groupby("table"):
        assert sorted(part["batch"]) == list(range(1, len(part) + 1)), part
        assert part["pages"].sum() == ends[table], (table, part)
    assert set(pages["worker"]) == {1, 2}, "both connections took batches"


def test_a_worker_that_fails_stops_the_others_and_the_error_is_raised(migrated, monkeypatch):
    calls = []

    def broken(conn, table, statement, params, policy):
        calls.append(table)
        raise RuntimeError("boom")
    monkeypatch.setattr(backfill, "_batch", broken)
    policy = backfill.BatchPolicy(batch_size=7, min_batch_size=5, max_batch_size=9, workers=2)
    with db.connect(migrated) as conn, pytest.raises(RuntimeError, match="boom"):
        backfill.run(conn, policy, progress=False)
    assert 1 <= len(calls) <= 2, "no batch starts after the first error"


# app -> (a user without a workspace, their rows down to one of the big table, which the guard
#   cannot place; the big table's parent, which is then given a workspace, and that parent row)
LATE_ORPHAN = {
    "datahub": ("""
INSERT INTO "User" ("id", "email") VALUES ('late_user', 'late@example.invalid');
INSERT INTO "Connection" ("id", "userId", "provider", "status", "updatedAt")
VALUES ('late_conn', 'late_user', 'late_provider', 'active', now());
INSERT INTO "MetricDaily" ("id", "connectionId", "date", "metric", "value")
VALUES ('late_big', 'late_conn', DATE '2025-01-01', 'late', 1);
""", "Connection", "late_conn"),
    "projects": ("""
INSERT INTO "User" ("id", "email") VALUES ('late_user', 'late@example.invalid');
INSERT INTO "Project" ("id", "ownerId", "name", "updatedAt") VALUES ('late_prj', 'late_user', 'late', now());
INSERT INTO "Task" ("id", "projectId", "title", "updatedAt") VALUES ('late_tsk', 'late_prj', 'late', now());
INSERT INTO "Comment" ("id", "taskId", "authorId", "body", "updatedAt")
VALUES ('late_big', 'late_tsk', 'late_user', 'late', now());
""", "Task", "late_tsk"),
}


def test_a_row_the_guard_could_not_place_during_the_pass_is_looked_for_again(app, seeded, monkeypatch):
    """The first pass knows from its own counts that it left nothing on its pages (no second
    count of the whole table). A row written meanwhile that the guard could not place (here:
    after every page was walked, by a user without a workspace, who then got one) is NULL with
    no batch having seen it: the guard's count of unplaced rows sends the backfill looking."""
    url = seeded(**app.rows(576), users_without_default=3, orphans=0, ambiguous=0)
    late_rows, parent, parent_id = LATE_ORPHAN[app.name]
    tables = spec.active().table_names
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
        for table in tables[:tables.index(app.big)]:         # the big table's ancestors, done
            backfill.backfill_table(conn, table, POLICY, [], progress=False)
    page_pass = backfill._page_pass

    def then_a_late_orphan(*args, **kwargs):
        done = page_pass(*args, **kwargs)
        with db.connect(url) as side:
            side.execute(late_rows)
            side.commit()
            placed = side.execute(sql.SQL('SELECT "workspaceId" FROM {} WHERE "id" = %s').format(
                sql.Identifier(app.big)), ("late_big",)).fetchone()
            assert placed == {"workspaceId": None}, "the guard cannot place it: its parent has no workspace"
            side.execute(sql.SQL('UPDATE {} SET "workspaceId" = (SELECT min("id") FROM "Workspace") '
                                 'WHERE "id" = %s').format(sql.Identifier(parent)), (parent_id,))
            side.commit()
        return done

    monkeypatch.setattr(backfill, "_page_pass", then_a_late_orphan)
    batches = []
    with db.connect(url) as conn:
        backfill.backfill_table(conn, app.big, POLICY, batches, progress=False)
        nulls = int(checks.null_count(conn, app.big)["nulls"])
    assert nulls == 0, "the late row must be placed by the second pass"
    assert [b["scanned"] for b in batches if b["pass"] == "keyset"] == [1]


def test_the_second_pass_is_skipped_when_the_first_left_nothing(app, seeded):
    url = seeded(**app.rows(576), users_without_default=3, orphans=0, ambiguous=0)
    batches = []
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
        for table in spec.active().table_names:
            backfill.backfill_table(conn, table, POLICY, batches, progress=False)
    assert actual_workspaces(url) == expected_workspaces(url)
    assert {b["pass"] for b in batches} == {"pages"}
