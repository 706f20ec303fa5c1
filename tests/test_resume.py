"""Resume from anywhere (issue 9, point 6): a backfill re-run over a table whose heap pages are
mostly done converges, even with a tight batch_statement_timeout. A first-pass batch spans no
more pages than its size in rows fills at the most rows per page seen (so it holds about that
many rows however many of them are NULL), and a batch that fails is tried again with half
its span, down to one page. Each test runs once per app (Data Hub, and the projects app of
tests/apps/projects/) on its table of many rows (App.big: MetricDaily, Comment), except two cases
that run the backfill's notebook on 48,000 rows and stay on Data Hub for time: the kill with one
worker, and the tight timeout over a table 90 % done without a kill."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pandas as pd
import psycopg
import pytest
from conftest import actual_workspaces, expected_workspaces, kill_run, query, run_runbook
from psycopg import sql

from tenancy_runbook import checks, db, placement, spec
from tenancy_runbook.errors import GateFailed
from tenancy_runbook.locks import DDLLog, RetryPolicy
from tenancy_runbook.paths import ROOT
from tenancy_runbook.stages import add_workspace_columns, backfill

# 48,000 rows of the big table: MetricDaily's on about 480 heap pages (about 100 a page),
# Comment's on about 780. Its last tenth in one UPDATE (what the old span reached the NULL
# remainder with) takes 80-250 ms; one page, 2-7 ms.
ROWS = 48_000
TIGHT = ["-p", "batch_statement_timeout", "25ms"]
STAGE = ["--from", "20_backfill", "--to", "20_backfill"]


def pages_batch(table: str):
    """The first pass's batch statement of ``table``, by the active spec (the app's)."""
    return placement.step(spec.active(), spec.active().table(table)).pages


def place_ancestors(url: str, app, expected: dict) -> None:
    """Every table before the big one (its parent and theirs) placed by the rule, as a backfill
    that reached the big table would have left them."""
    tables = spec.active().table_names
    for table in tables[:tables.index(app.big)]:
        place(url, table, expected[table])


def migrate(url: str) -> str:
    """Migration 1 (the columns), as 10_add_workspace_columns applies it."""
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
    return url


def heap_pages(url: str, table: str) -> int:
    return query(url, "SELECT (pg_relation_size(to_regclass(%s)) / current_setting('block_size')::int)::int",
                 [f'"{table}"'])[0][0]


def densest_page(url: str, table: str) -> int:
    """The most rows on one heap page of ``table``."""
    return query(url, "SELECT max(n)::int FROM (SELECT count(*) AS n FROM {t} GROUP BY (ctid::text::point)[0]) p",
                 t=table)[0][0]


def place(url: str, table: str, workspaces: dict) -> None:
    """Set workspaceId directly, as a backfill that got this far would have."""
    query(url, """UPDATE {t} r SET "workspaceId" = x.ws FROM unnest(%s::text[], %s::text[]) AS x(id, ws)
                  WHERE r."id" = x.id""", [list(workspaces), list(workspaces.values())], t=table)


def test_ninety_percent_done_then_a_tight_batch_timeout_converges(app, seeded, tmp_path):
    url = migrate(seeded(**app.rows(ROWS)))
    expected = expected_workspaces(url)
    cut = int(heap_pages(url, app.big) * 0.9)
    done = [i for (i,) in query(url, 'SELECT "id" FROM {t} WHERE ctid < %s::tid', [f"({cut},0)"], t=app.big)]
    place_ancestors(url, app, expected)
    place(url, app.big, {i: expected[app.big][i] for i in done})
    left = query(url, 'SELECT count(*) FROM {t} WHERE "workspaceId" IS NULL', t=app.big)[0][0]
    assert 0.05 * len(expected[app.big]) < left < 0.15 * len(expected[app.big])

    resumed = run_runbook(url, tmp_path / "b", *STAGE, *TIGHT)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert actual_workspaces(url) == expected


# one worker on Data Hub only (each case runs the backfill's notebook twice on 48,000 rows); two
# workers, each its own page ranges, on both apps
@pytest.mark.parametrize("app, workers", [("datahub", "1"), ("datahub", "2"), ("projects", "2")],
                         ids=["datahub-1", "datahub-2", "projects-2"], indirect=["app"])
def test_killed_at_ninety_percent_of_the_first_pass_resumes(app, seeded, tmp_path, workers):
    """With one worker, or two (each its own page ranges: the kill leaves two batches half-done)."""
    url = migrate(seeded(**app.rows(ROWS)))
    expected = expected_workspaces(url)
    total = len(expected[app.big])
    # batches of 1 % of the rows, 40 ms apart: the last tenth of the first pass takes over 0.4 s
    one_percent = str(total // 100)
    slow = ["-p", "batch_size", one_percent, "-p", "min_batch_size", one_percent, "-p", "max_batch_size",
            one_percent, "-p", "batch_pause_ms", "40", "-p", "backfill_workers", workers]
    proc = subprocess.Popen([sys.executable, "-m", "tenancy_runbook", "run", app.runbook(),
                             "--run-dir", str(tmp_path / "killed"), *STAGE, *slow],
                            cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if query(url, 'SELECT count("workspaceId") FROM {t}', t=app.big)[0][0] >= 0.9 * total:
                break
            time.sleep(0.01)
    finally:
        kill_run(proc)
    time.sleep(0.5)
    placed = dict(query(url, 'SELECT "id", "workspaceId" FROM {t} WHERE "workspaceId" IS NOT NULL', t=app.big))
    assert 0.9 * total <= len(placed) < total, "killed in the last tenth of the first pass"
    assert all(expected[app.big][i] == ws for i, ws in placed.items())

    resumed = run_runbook(url, tmp_path / "b", *STAGE, *TIGHT, "-p", "backfill_workers", workers)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert actual_workspaces(url) == expected, "every row placed, none lost"


def spans_within_density(frame: pd.DataFrame) -> None:
    """Every try spans at most size / (the most rows per page its earlier batches found) pages."""
    densest = 0.0
    for row in frame.itertuples():
        if densest:
            assert row.pages <= max(1, row.size / densest), (row, densest)
        if pd.isna(row.error):
            densest = max(densest, row.tuples / row.pages)


def first_pages(frame: pd.DataFrame) -> list[int]:
    """The page each try of a first pass started at (a failed try does not move it)."""
    out, page = [], 0
    for row in frame.itertuples():
        out.append(page)
        page += row.pages if pd.isna(row.error) else 0
    return out


def test_a_failed_batch_is_retried_with_half_its_span_down_to_one_page(app, seeded):
    """A row locked by another transaction makes every batch over its page fail (lock_timeout)
    until it is released: the tries over it halve their span, down to the page itself."""
    url = migrate(seeded(**app.rows(9600)))                       # about 96 pages (Comment: 160)
    expected = expected_workspaces(url)
    place_ancestors(url, app, expected)
    locked = heap_pages(url, app.big) * 2 // 3
    holder = psycopg.connect(url)                                 # holds its transaction open
    holder.execute(sql.SQL('SELECT 1 FROM {} WHERE ctid = %s::tid FOR UPDATE').format(
        sql.Identifier(app.big)), [f"({locked},1)"])
    batches: list = []

    def release():       # once the batch of that one page has failed twice
        while sum(1 for b in list(batches) if b["error"] and b["pages"] == 1) < 2:
            time.sleep(0.01)
        holder.rollback()
    releaser = threading.Thread(target=release, daemon=True)
    releaser.start()
    policy = backfill.BatchPolicy(batch_size=1000, min_batch_size=100, max_batch_size=5000,
                                  lock_timeout="20ms")
    try:
        with db.connect(url) as conn:
            todo = int(checks.null_count(conn, app.big)["nulls"])
            backfill._page_pass(conn, app.big, pages_batch(app.big), policy, batches, [], todo)
    finally:
        releaser.join(5)
        holder.close()

    assert actual_workspaces(url)[app.big] == expected[app.big]
    frame = pd.DataFrame(batches, columns=backfill.BATCH_COLUMNS)
    frame["first_page"] = first_pages(frame)
    failed = frame[frame["error"].notna()]
    assert failed["error"].str.contains("lock timeout").all(), failed
    # every failed try spanned the locked page; each next try spanned half as many pages or fewer
    assert (failed["first_page"] <= locked).all() and (failed["first_page"] + failed["pages"] > locked).all()
    assert failed["pages"].max() > 2, "a longer span failed first"
    for _, tries in frame.groupby("batch"):
        spans = list(tries["pages"])
        assert all(b <= max(1, a // 2) for a, b in zip(spans, spans[1:])), spans
    at_lock = frame[frame["batch"] == failed["batch"].max()]
    assert list(at_lock["pages"])[-3:] == [1, 1, 1] and set(at_lock["first_page"]) == {locked}, at_lock
    assert backfill.batch_summary(frame).set_index("table").loc[app.big, "retries"] == len(failed)
    spans_within_density(frame)


def test_only_a_one_page_batch_failing_again_and_again_gives_up(app, seeded, monkeypatch):
    """A row locked for good: the batches before its page are kept, the tries over it shrink to
    that page, and after _Retry.MAX more tries of it the pass stops with a clear message."""
    monkeypatch.setattr(backfill._Retry, "MAX", 2)               # (8 tries back off for about 20 s)
    url = migrate(seeded(**app.rows(2400)))                       # about 24 pages (Comment: 40)
    expected = expected_workspaces(url)
    place_ancestors(url, app, expected)
    locked = heap_pages(url, app.big) // 2
    before = {i for (i,) in query(url, 'SELECT "id" FROM {t} WHERE ctid < %s::tid', [f"({locked},0)"], t=app.big)}
    batches: list = []
    with psycopg.connect(url) as holder:
        holder.execute(sql.SQL('SELECT 1 FROM {} WHERE ctid = %s::tid FOR UPDATE').format(
            sql.Identifier(app.big)), [f"({locked},1)"])
        policy = backfill.BatchPolicy(batch_size=400, min_batch_size=100, max_batch_size=5000, lock_timeout="20ms")
        with db.connect(url) as conn, pytest.raises(GateFailed) as stopped:
            backfill._page_pass(conn, app.big, pages_batch(app.big), policy, batches, [], len(expected[app.big]))
        holder.rollback()
    message = str(stopped.value)
    assert f"at page {locked} alone, the smallest batch there is (canceling statement due to lock timeout)" in message
    assert "failed" in message and "earlier batches are kept" in message and "lock_timeout" in message
    frame = pd.DataFrame(batches, columns=backfill.BATCH_COLUMNS)
    assert list(frame[frame["error"].notna()]["pages"])[-3:] == [1, 1, 1]
    placed = {i for i, ws in actual_workspaces(url)[app.big].items() if ws}
    assert placed == before, "every page before the locked one is done, nothing after it"


def test_on_a_fresh_table_a_batch_holds_its_size_in_rows(app, seeded):
    """All NULL, rows per page and NULLs per page are the same: each batch spans the pages its
    size fills, as before the bound (within a page)."""
    url = migrate(seeded(**app.rows(9600)))
    expected = expected_workspaces(url)
    place_ancestors(url, app, expected)
    dense = densest_page(url, app.big)
    policy = backfill.BatchPolicy(batch_size=1000, min_batch_size=1000, max_batch_size=1000)
    batches: list = []
    with db.connect(url) as conn:
        todo = int(checks.null_count(conn, app.big)["nulls"])
        backfill._page_pass(conn, app.big, pages_batch(app.big), policy, batches, [], todo)
    frame = pd.DataFrame(batches, columns=backfill.BATCH_COLUMNS)
    whole = frame.iloc[:-1]      # (the last one ends at the table's end, with some rows it moved there)
    assert whole["error"].isna().all() and (whole["scanned"] == whole["tuples"]).all()
    # the first batch is sized by the table's average rows per page, the others by the most seen
    assert 1000 - dense < whole["tuples"].iloc[0] < 1000 + dense, (whole, dense)
    assert (whole["tuples"].iloc[1:] <= 1000).all() and (whole["tuples"] > 1000 - 2 * dense).all(), (whole, dense)
    assert actual_workspaces(url)[app.big] == expected[app.big]


def test_past_done_pages_a_batch_still_holds_at_most_its_size(app, seeded):
    """The first 90 % of the pages done: batches over them find no NULL and the size grows to
    its maximum; the first over the NULL rows after them holds no more than that size."""
    url = migrate(seeded(**app.rows(9600)))
    expected = expected_workspaces(url)
    place_ancestors(url, app, expected)
    cut = heap_pages(url, app.big) * 9 // 10
    done = [i for (i,) in query(url, 'SELECT "id" FROM {t} WHERE ctid < %s::tid', [f"({cut},0)"], t=app.big)]
    place(url, app.big, {i: expected[app.big][i] for i in done})
    left = query(url, 'SELECT count(*) FROM {t} WHERE "workspaceId" IS NULL', t=app.big)[0][0]
    policy = backfill.BatchPolicy(batch_size=100, min_batch_size=100, max_batch_size=left // 2,
                                  target_batch_ms=1e6)           # every batch is quick: it grows
    batches: list = []
    with db.connect(url) as conn:
        backfill._page_pass(conn, app.big, pages_batch(app.big), policy, batches, [], left)
    frame = pd.DataFrame(batches, columns=backfill.BATCH_COLUMNS)
    assert (frame["scanned"] <= frame["size"]).all(), frame[frame["scanned"] > frame["size"]]
    first_null = frame[frame["scanned"] > 0].iloc[0]
    assert first_null["size"] == left // 2, "the size grew to its maximum over the done pages"
    assert len(frame[frame["scanned"] > 0]) >= 2
    spans_within_density(frame)
    assert actual_workspaces(url)[app.big] == expected[app.big]
