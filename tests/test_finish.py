"""The transition guard outlives the runbook (old application servers keep writing), counts what
it places, and runbooks/finish.yaml removes it only once it has been quiet for quiet_period. Each
test that installs the guard runs once per app (Data Hub, and the projects app), each by its spec."""

from __future__ import annotations

import time

import psycopg
import pytest
from conftest import expected_workspaces, notebook_text, query, run_runbook, stage_lines

from tenancy_runbook import db, runbook, spec
from tenancy_runbook.errors import GateFailed, RunbookError
from tenancy_runbook.locks import DDLLog, RetryPolicy
from tenancy_runbook.stages import add_workspace_columns, backfill, enforce_not_null, remove_guard

FINISH = "runbooks/finish.yaml"          # run_runbook maps it to the app's own finish runbook
# app -> (the parent table of app.child, a row of app.child an old server writes: %(id)s, %(parent)s, %(user)s)
OLD_CHILD_ROW = {
    "datahub": ("Connection", """INSERT INTO "MetricDaily" (id, "connectionId", date, metric, value)
                                 VALUES (%(id)s, %(parent)s, '2030-01-01', 'sessions', 1)"""),
    "projects": ("Task", """INSERT INTO "Comment" (id, "taskId", "authorId", body, "updatedAt")
                            VALUES (%(id)s, %(parent)s, %(user)s, 'hi', now())"""),
}
# app -> 50 rows of app.user_table in one statement, by %(user)s, as an old server writes them
FIFTY_USER_ROWS = {
    "datahub": """INSERT INTO "ChatMessage" (id, "userId", role, content)
                  SELECT 'a_' || g, %(user)s, 'user', 'hi' FROM generate_series(1, 50) g""",
    "projects": """INSERT INTO "Label" (id, name, color, "createdById", "updatedAt")
                   SELECT 'a_' || g, 'a ' || g, '#777777', %(user)s, now() FROM generate_series(1, 50) g""",
}


def runbook_of(app, runbook: str) -> str:
    """One of Data Hub's runbooks, or the app's counterpart of it (as run_runbook maps it)."""
    return app.runbooks.get(runbook, runbook)


def guard_objects(url: str) -> dict:
    """Two triggers per table (placing, counting), three functions, the counts."""
    return {"triggers": query(url, """SELECT count(*) FROM pg_trigger WHERE tgname IN
                                      ('tenancy_runbook_place_workspace', 'tenancy_runbook_count_placements')""")[0][0],
            "functions": query(url, """SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                       WHERE n.nspname = 'tenancy_runbook' AND p.proname IN
                                             ('user_workspace', 'place_workspace', 'count_placements')""")[0][0],
            "counts": query(url, "SELECT to_regclass('tenancy_runbook.guard_placements') IS NOT NULL")[0][0]}


def test_the_guard_stays_after_the_run_and_finish_removes_it_once_quiet(app, seeded, tmp_path):
    url = seeded()
    guarded_state = {"triggers": 2 * len(app.tables), "functions": 3, "counts": True}
    result = run_runbook(url, tmp_path / "run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert list(stage_lines(result.stdout)) == ["00_preflight", "10_add_workspace_columns", "20_backfill",
                                                "30_check_backfill", "40_enforce_not_null", "50_post_verify"]
    assert guard_objects(url) == guarded_state
    # the run's last lines say how to finish
    said = runbook.load(runbook_of(app, "runbooks/datahub-tenancy.yaml")).next
    assert runbook_of(app, FINISH) in said
    assert said in "\n".join(result.stdout.strip().splitlines()[-3:]), result.stdout

    # an application server of the old version writes, after NOT NULL: the guard places its rows
    user = query(url, """SELECT id FROM "User" WHERE "defaultWorkspaceId" IS NOT NULL ORDER BY id LIMIT 1""")[0][0]
    parent_table, child_row = OLD_CHILD_ROW[app.name]
    parent = query(url, "SELECT id FROM {t} ORDER BY id LIMIT 1", t=parent_table)[0][0]
    app.write_user_row(url, "old_row", user)
    query(url, child_row, {"id": "old_child", "parent": parent, "user": user})
    expected = expected_workspaces(url)
    assert query(url, """SELECT "workspaceId" FROM {t} WHERE id = 'old_row'""", t=app.user_table) == \
        [(expected[app.user_table]["old_row"],)]
    assert query(url, """SELECT "workspaceId" FROM {t} WHERE id = 'old_child'""", t=app.child) == \
        [(expected[app.child]["old_child"],)]

    # so finish refuses, naming the tables, their counts and what to do
    refused = run_runbook(url, tmp_path / "refused", runbook=FINISH)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert stage_lines(refused.stdout) == {"60_remove_guard": "gate failed"}
    for words in ("Not removing the transition guard", "(quiet_period 15min)", "Within quiet_period the guard placed rows in 2 table(s)",
                  f"{app.child}: 1 row placed, the last ", f"{app.user_table}: 1 row placed, the last ",
                  "Nothing was changed", "Finish deploying the new application version",
                  "-p quiet_period 0"):
        assert words in refused.stdout, (words, refused.stdout)
    for quiet in (t for t in app.tables if t not in (app.child, app.user_table)):
        assert f"{quiet}:" not in refused.stdout, (quiet, refused.stdout)
    assert guard_objects(url) == guarded_state

    # once the guard has placed nothing for quiet_period, it comes off, and the counts are in the evidence
    time.sleep(1.2)
    finished = run_runbook(url, tmp_path / "finished", "-p", "quiet_period", "1s", runbook=FINISH)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert stage_lines(finished.stdout) == {"60_remove_guard": "ok"}
    assert guard_objects(url) == {"triggers": 0, "functions": 0, "counts": False}
    evidence = notebook_text(tmp_path / "finished" / "60_remove_guard.ipynb")
    assert f"{app.user_table}: 1 row placed" in evidence and f"{app.child}: 1 row placed" in evidence
    assert f"Removed the transition guard from {', '.join(app.tables)}" in evidence
    html = (tmp_path / "finished" / "60_remove_guard.html").read_text()
    assert f"{app.user_table}: 1 row placed" in html and "image/png" in html
    with pytest.raises(psycopg.errors.NotNullViolation, match='"workspaceId"'):
        app.write_user_row(url, "old_row_2", user)

    # run again: nothing to remove, and it says so
    again = run_runbook(url, tmp_path / "again", runbook=FINISH)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "The transition guard was already removed" in notebook_text(tmp_path / "again" / "60_remove_guard.ipynb")


@pytest.fixture
def guarded(seeded):
    """Columns added (nullable) and the guard installed, nothing backfilled."""
    url = seeded(users_without_default=1, orphans=1)
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
    return url


def test_old_servers_writing_at_once_do_not_wait_for_each_other_and_every_row_is_counted(app, guarded):
    url = guarded
    user = query(url, """SELECT id FROM "User" WHERE "defaultWorkspaceId" IS NOT NULL ORDER BY id LIMIT 1""")[0][0]
    orphan = query(url, """SELECT u.id FROM "User" u WHERE u."defaultWorkspaceId" IS NULL AND NOT EXISTS (
                             SELECT FROM "WorkspaceMember" m WHERE m."userId" = u.id AND m.role = 'OWNER')
                           ORDER BY u.id LIMIT 1""")[0][0]
    with psycopg.connect(url) as first, psycopg.connect(url, autocommit=True) as second:
        first.execute(FIFTY_USER_ROWS[app.name], {"user": user})
        # 50 rows in one statement: the counts are written once (per statement, not per row)
        assert first.execute("""SELECT n_tup_ins + n_tup_upd FROM pg_stat_xact_user_tables
                                WHERE relid = 'tenancy_runbook.guard_placements'::regclass""").fetchone() == (1,)
        # a second writer is not blocked by the first one's count (a single counter row would be)
        second.execute("SET lock_timeout = '2s'")
        second.execute(app.user_row, {"id": "b_1", "user": user})
        second.execute(app.user_row, {"id": "b_2", "user": orphan})   # the rule has no answer: stays NULL
        first.execute(app.user_row, {"id": "a_51", "user": user})     # a second statement, same transaction
        first.commit()                                                # (its transaction stayed open until here)
        first.execute(app.user_row, {"id": "a_52", "user": user})
        first.rollback()                                        # a row not written is not counted
    assert query(url, """SELECT count(*) FROM tenancy_runbook.guard_placements
                         WHERE table_name = %s""", [app.user_table]) == [(2,)]     # one row per backend
    with db.connect(url) as conn:
        counts = remove_guard.placements(conn).set_index("table")
        assert remove_guard.not_quiet(remove_guard.placements(conn), "0") == ""
        problem = remove_guard.not_quiet(remove_guard.placements(conn), "1h")
    others = [t for t in app.tables if t != app.user_table]
    assert counts.loc[app.user_table, ["placed", "unplaced"]].tolist() == [52, 1]
    assert counts.loc[others, "placed"].tolist() == [0] * len(others)
    assert counts["guarded"].all() and counts.index.tolist() == list(spec.active().table_names) == list(app.tables)
    assert f"{app.user_table}: 52 rows placed, 1 it could not place" in problem
    assert "The guard has counted for only" in problem     # and not for an hour yet


@pytest.fixture
def enforced(seeded):
    """The runbook's work done by its functions: columns added, the guard installed, every table
    backfilled and NOT NULL enforced."""
    url = seeded()
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
        for table in spec.active().table_names:
            backfill.backfill_table(conn, table, backfill.BatchPolicy(), [], progress=False)
        enforce_not_null.apply(conn, RetryPolicy(), "test", DDLLog())
    return url


def test_finish_refuses_before_not_null_is_enforced_even_with_quiet_period_0(app, guarded, tmp_path):
    url = guarded        # the run stopped before 40_enforce_not_null: the columns are nullable
    refused = run_runbook(url, tmp_path / "refused", "-p", "quiet_period", "0", runbook=FINISH)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert stage_lines(refused.stdout) == {"60_remove_guard": "gate failed"}
    tables = ", ".join(app.tables)
    # the runbooks it names are the app's own (the tenancy runbook and the finish runbook of its spec)
    for words in (f"workspaceId is still nullable on {tables}", "40_enforce_not_null has not run",
                  "Nothing was changed", f"tenancy-runbook run {app.runbook()}` to its end",
                  f"then `tenancy-runbook run {app.runbook(FINISH)}` once"):
        assert words in refused.stdout, (words, refused.stdout)
    assert guard_objects(url) == {"triggers": 2 * len(app.tables), "functions": 3, "counts": True}
    with db.connect(url) as conn:      # the function refuses as well, not only the notebook's gate
        with pytest.raises(GateFailed, match=f"still nullable on {tables}"):
            remove_guard.run(conn, RetryPolicy(), DDLLog(), "0")
    assert guard_objects(url) == {"triggers": 2 * len(app.tables), "functions": 3, "counts": True}


def test_the_removal_checks_the_counts_again_under_the_tables_locks(app, enforced):
    url = enforced
    user = query(url, """SELECT id FROM "User" WHERE "defaultWorkspaceId" IS NOT NULL ORDER BY id LIMIT 1""")[0][0]
    time.sleep(1.1)
    with db.connect(url) as conn:
        assert remove_guard.not_quiet(remove_guard.placements(conn), "1s") == ""    # quiet: the gate passes
        app.write_user_row(url, "late", user)          # and then an old server writes
        with pytest.raises(GateFailed, match=rf"{app.user_table}: 1 row placed, the last \d+s ago"):
            remove_guard.run(conn, RetryPolicy(), DDLLog(), "1s")
        assert backfill.guard_state(conn)["guarded"].all(), "nothing was removed"

        time.sleep(1.1)
        state = remove_guard.run(conn, RetryPolicy(), DDLLog(), "1s")
        assert not state["guarded"].any() and state["removed"].all()
        again = remove_guard.run(conn, RetryPolicy(), DDLLog(), "1h")
        assert remove_guard.outcome(again) == "The transition guard was already removed: nothing was changed."
        assert remove_guard.report(remove_guard.placements(conn)).startswith(
            "The transition guard is not installed on any table (already removed, or never installed)")


def test_next_is_text_and_optional(tmp_path):
    # Data Hub only: the runbook file format (no spec, no database)
    assert runbook.load("runbooks/finish.yaml").next == ""
    assert runbook.load("runbooks/datahub-tenancy.yaml").next.count("\n") <= 1    # one or two lines
    book = tmp_path / "book.yaml"
    book.write_text("next: [deploy, finish]\nstages: [60_remove_guard]\n")
    with pytest.raises(RunbookError, match=r"'next' must be text .* not list"):
        runbook.load(book)
