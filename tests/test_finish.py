"""The transition guard outlives the runbook (old application servers keep writing), counts what
it places, and runbooks/finish.yaml removes it only once it has been quiet for quiet_period."""

from __future__ import annotations

import time

import psycopg
import pytest
from conftest import TENANT, expected_workspaces, notebook_text, query, run_runbook, stage_lines

from tenancy_runbook import db, runbook, spec
from tenancy_runbook.errors import GateFailed, RunbookError
from tenancy_runbook.locks import DDLLog, RetryPolicy
from tenancy_runbook.stages import add_workspace_columns, backfill, enforce_not_null, remove_guard

FINISH = "runbooks/finish.yaml"
OLD_MESSAGE = """INSERT INTO "ChatMessage" (id, "userId", role, content) VALUES (%s, %s, 'user', 'hi')"""
OLD_METRIC = """INSERT INTO "MetricDaily" (id, "connectionId", date, metric, value)
                VALUES (%s, %s, '2030-01-01', 'sessions', 1)"""


def guard_objects(url: str) -> dict:
    """Two triggers per table (placing, counting), three functions, the counts."""
    return {"triggers": query(url, """SELECT count(*) FROM pg_trigger WHERE tgname IN
                                      ('tenancy_runbook_place_workspace', 'tenancy_runbook_count_placements')""")[0][0],
            "functions": query(url, """SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                       WHERE n.nspname = 'tenancy_runbook' AND p.proname IN
                                             ('user_workspace', 'place_workspace', 'count_placements')""")[0][0],
            "counts": query(url, "SELECT to_regclass('tenancy_runbook.guard_placements') IS NOT NULL")[0][0]}


def test_the_guard_stays_after_the_run_and_finish_removes_it_once_quiet(datahub, tmp_path):
    url = datahub()
    result = run_runbook(url, tmp_path / "run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert list(stage_lines(result.stdout)) == ["00_preflight", "10_add_workspace_columns", "20_backfill",
                                                "30_check_backfill", "40_enforce_not_null", "50_post_verify"]
    assert guard_objects(url) == {"triggers": 8, "functions": 3, "counts": True}
    # the run's last lines say how to finish
    said = runbook.load("runbooks/datahub-tenancy.yaml").next
    assert "runbooks/finish.yaml" in said
    assert said in "\n".join(result.stdout.strip().splitlines()[-3:]), result.stdout

    # an application server of the old version writes, after NOT NULL: the guard places its rows
    user = query(url, """SELECT id FROM "User" WHERE "defaultWorkspaceId" IS NOT NULL ORDER BY id LIMIT 1""")[0][0]
    connection = query(url, """SELECT id FROM "Connection" ORDER BY id LIMIT 1""")[0][0]
    query(url, OLD_MESSAGE, ["old_msg", user])
    query(url, OLD_METRIC, ["old_metric", connection])
    expected = expected_workspaces(url)
    assert query(url, """SELECT "workspaceId" FROM "ChatMessage" WHERE id = 'old_msg'""") == \
        [(expected["ChatMessage"]["old_msg"],)]
    assert query(url, """SELECT "workspaceId" FROM "MetricDaily" WHERE id = 'old_metric'""") == \
        [(expected["MetricDaily"]["old_metric"],)]

    # so finish refuses, naming the tables, their counts and what to do
    refused = run_runbook(url, tmp_path / "refused", runbook=FINISH)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert stage_lines(refused.stdout) == {"60_remove_guard": "gate failed"}
    for words in ("Not removing the transition guard", "(quiet_period 15min)", "Within quiet_period the guard placed rows in 2 table(s)",
                  "MetricDaily: 1 row placed, the last ", "ChatMessage: 1 row placed, the last ",
                  "Nothing was changed", "Finish deploying the new application version",
                  "-p quiet_period 0"):
        assert words in refused.stdout, (words, refused.stdout)
    assert "Connection:" not in refused.stdout and "Insight:" not in refused.stdout
    assert guard_objects(url) == {"triggers": 8, "functions": 3, "counts": True}

    # once the guard has placed nothing for quiet_period, it comes off, and the counts are in the evidence
    time.sleep(1.2)
    finished = run_runbook(url, tmp_path / "finished", "-p", "quiet_period", "1s", runbook=FINISH)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert stage_lines(finished.stdout) == {"60_remove_guard": "ok"}
    assert guard_objects(url) == {"triggers": 0, "functions": 0, "counts": False}
    evidence = notebook_text(tmp_path / "finished" / "60_remove_guard.ipynb")
    assert "ChatMessage: 1 row placed" in evidence and "MetricDaily: 1 row placed" in evidence
    assert "Removed the transition guard from Connection, MetricDaily, Insight, ChatMessage" in evidence
    html = (tmp_path / "finished" / "60_remove_guard.html").read_text()
    assert "ChatMessage: 1 row placed" in html and "image/png" in html
    with pytest.raises(psycopg.errors.NotNullViolation, match='"workspaceId"'):
        query(url, OLD_MESSAGE, ["old_msg_2", user])

    # run again: nothing to remove, and it says so
    again = run_runbook(url, tmp_path / "again", runbook=FINISH)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "The transition guard was already removed" in notebook_text(tmp_path / "again" / "60_remove_guard.ipynb")


@pytest.fixture
def guarded(datahub):
    """Columns added (nullable) and the guard installed, nothing backfilled."""
    url = datahub(users_without_default=1, orphans=1)
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
    return url


def test_old_servers_writing_at_once_do_not_wait_for_each_other_and_every_row_is_counted(guarded):
    url = guarded
    user = query(url, """SELECT id FROM "User" WHERE "defaultWorkspaceId" IS NOT NULL ORDER BY id LIMIT 1""")[0][0]
    orphan = query(url, """SELECT u.id FROM "User" u WHERE u."defaultWorkspaceId" IS NULL AND NOT EXISTS (
                             SELECT FROM "WorkspaceMember" m WHERE m."userId" = u.id AND m.role = 'OWNER')
                           ORDER BY u.id LIMIT 1""")[0][0]
    with psycopg.connect(url) as first, psycopg.connect(url, autocommit=True) as second:
        first.execute("""INSERT INTO "ChatMessage" (id, "userId", role, content)
                         SELECT 'a_' || g, %s, 'user', 'hi' FROM generate_series(1, 50) g""", [user])
        # 50 rows in one statement: the counts are written once (per statement, not per row)
        assert first.execute("""SELECT n_tup_ins + n_tup_upd FROM pg_stat_xact_user_tables
                                WHERE relid = 'tenancy_runbook.guard_placements'::regclass""").fetchone() == (1,)
        # a second writer is not blocked by the first one's count (a single counter row would be)
        second.execute("SET lock_timeout = '2s'")
        second.execute(OLD_MESSAGE, ["b_1", user])
        second.execute(OLD_MESSAGE, ["b_2", orphan])            # the rule has no answer: stays NULL
        first.execute(OLD_MESSAGE, ["a_51", user])              # a second statement, same transaction
        first.commit()                                          # (its transaction stayed open until here)
        first.execute(OLD_MESSAGE, ["a_52", user])
        first.rollback()                                        # a row not written is not counted
    assert query(url, """SELECT count(*) FROM tenancy_runbook.guard_placements
                         WHERE table_name = 'ChatMessage'""") == [(2,)]     # one row per backend
    with db.connect(url) as conn:
        counts = remove_guard.placements(conn).set_index("table")
        assert remove_guard.not_quiet(remove_guard.placements(conn), "0") == ""
        problem = remove_guard.not_quiet(remove_guard.placements(conn), "1h")
    assert counts.loc["ChatMessage", ["placed", "unplaced"]].tolist() == [52, 1]
    assert counts.loc[["Connection", "MetricDaily", "Insight"], "placed"].tolist() == [0, 0, 0]
    assert counts["guarded"].all() and counts.index.tolist() == list(spec.active().table_names) == list(TENANT)
    assert "ChatMessage: 52 rows placed, 1 it could not place" in problem
    assert "The guard has counted for only" in problem     # and not for an hour yet


@pytest.fixture
def enforced(datahub):
    """The runbook's work done by its functions: columns added, the guard installed, every table
    backfilled and NOT NULL enforced."""
    url = datahub()
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
        for table in spec.active().table_names:
            backfill.backfill_table(conn, table, backfill.BatchPolicy(), [], progress=False)
        enforce_not_null.apply(conn, RetryPolicy(), "test", DDLLog())
    return url


def test_finish_refuses_before_not_null_is_enforced_even_with_quiet_period_0(guarded, tmp_path):
    url = guarded        # the run stopped before 40_enforce_not_null: the columns are nullable
    refused = run_runbook(url, tmp_path / "refused", "-p", "quiet_period", "0", runbook=FINISH)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert stage_lines(refused.stdout) == {"60_remove_guard": "gate failed"}
    for words in ("workspaceId is still nullable on Connection, MetricDaily, Insight, ChatMessage",
                  "40_enforce_not_null has not run", "Nothing was changed",
                  "tenancy-runbook run runbooks/datahub-tenancy.yaml"):
        assert words in refused.stdout, (words, refused.stdout)
    assert guard_objects(url) == {"triggers": 8, "functions": 3, "counts": True}
    with db.connect(url) as conn:      # the function refuses as well, not only the notebook's gate
        with pytest.raises(GateFailed, match="still nullable on Connection, MetricDaily, Insight, ChatMessage"):
            remove_guard.run(conn, RetryPolicy(), DDLLog(), "0")
    assert guard_objects(url) == {"triggers": 8, "functions": 3, "counts": True}


def test_the_removal_checks_the_counts_again_under_the_tables_locks(enforced):
    url = enforced
    user = query(url, """SELECT id FROM "User" WHERE "defaultWorkspaceId" IS NOT NULL ORDER BY id LIMIT 1""")[0][0]
    time.sleep(1.1)
    with db.connect(url) as conn:
        assert remove_guard.not_quiet(remove_guard.placements(conn), "1s") == ""    # quiet: the gate passes
        query(url, OLD_MESSAGE, ["late", user])        # and then an old server writes
        with pytest.raises(GateFailed, match=r"ChatMessage: 1 row placed, the last \d+s ago"):
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
    assert runbook.load("runbooks/finish.yaml").next == ""
    assert runbook.load("runbooks/datahub-tenancy.yaml").next.count("\n") <= 1    # one or two lines
    book = tmp_path / "book.yaml"
    book.write_text("next: [deploy, finish]\nstages: [60_remove_guard]\n")
    with pytest.raises(RunbookError, match=r"'next' must be text .* not list"):
        runbook.load(book)
