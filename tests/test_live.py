"""The live phase (issue 10): the backfill yields to a standby that falls behind, on a real
streaming replica (pg_basebackup -R from the test server's own binaries). Each test once per
app (Data Hub, and the projects app of tests/apps/projects/)."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import actual_workspaces, expected_workspaces

from tenancy_runbook import db, health
from tenancy_runbook.errors import GateFailed
from tenancy_runbook.locks import DDLLog, RetryPolicy
from tenancy_runbook.stages import add_workspace_columns, backfill

LIMIT = 256 * 1024      # bytes: a few batches of the big table (MetricDaily, Comment) write more WAL than this


def migrated(url: str) -> str:
    """Migration 1 applied and the guard installed, nothing backfilled yet."""
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "test", DDLLog())
        backfill.install_guard(conn, RetryPolicy(), DDLLog())
    return url


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_the_backfill_stops_while_a_standby_falls_behind_and_finishes_once_it_catches_up(app, seeded, replica):
    url = migrated(seeded(**app.rows(14_400)))            # 14,400 rows in its big table
    expected = expected_workspaces(url)
    # batches a moment apart, so that the health (read at most once a second) is read mid-table
    policy = backfill.BatchPolicy(batch_size=500, min_batch_size=100, max_batch_size=1000, pause_ms=150,
                                  limits=health.Limits(max_replica_lag=LIMIT))
    replica.pause()
    box: dict = {}
    with db.connect(url) as conn:
        steer = backfill.Steer(conn, policy)

        def work():
            try:
                box["result"] = backfill.run(conn, policy, progress=False, steer=steer)
            except BaseException as exc:   # noqa: BLE001 - looked at below
                box["error"] = exc

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            wait_for(lambda: steer.state == "waiting for replica" or not thread.is_alive(),
                     "the backfill to wait for the paused standby")
            assert thread.is_alive(), box
            lag = replica.lag_bytes()
            assert lag is not None and lag > LIMIT, lag
            batches = _batches_done(steer)
            time.sleep(2.5)                                  # > 2 readings of the health
            assert _batches_done(steer) == batches, "no batch ran while the standby was behind"
            assert steer.state == "waiting for replica"
        finally:
            replica.resume()
        thread.join(120)
    assert not thread.is_alive() and "error" not in box, box
    assert actual_workspaces(url) == expected
    episodes = steer.throttle.episodes_frame()
    assert (episodes["signal"] == "replica_lag").any(), episodes
    waited = episodes[episodes["signal"] == "replica_lag"]
    assert waited["seconds"].max() >= 2.0 and (waited["value"] > LIMIT).all(), waited
    assert steer.throttle.summary()["replica_lag_max_bytes"] > LIMIT
    assert steer.facts()["throttled_s"] >= 2.0


def test_a_standby_behind_for_longer_than_max_throttle_wait_stops_the_backfill_clearly(app, seeded, replica):
    url = migrated(seeded(**app.rows(14_400)))
    policy = backfill.BatchPolicy(batch_size=500, min_batch_size=100, max_batch_size=1000, pause_ms=150,
                                  limits=health.Limits(max_replica_lag=LIMIT, max_wait_s=1.5))
    replica.pause()
    try:
        with db.connect(url) as conn, pytest.raises(GateFailed) as stopped:
            backfill.run(conn, policy, progress=False)
    finally:
        replica.resume()
    message = str(stopped.value)
    assert "max_replica_lag" in message and "max_throttle_wait" in message, message
    with db.connect(url) as conn:       # what was committed stays; a re-run (no standby behind) finishes
        backfill.run(conn, backfill.BatchPolicy(limits=health.Limits(max_replica_lag=LIMIT)), progress=False)
    assert actual_workspaces(url) == expected_workspaces(url)


def _batches_done(steer: backfill.Steer) -> int:
    """Rows the backfill reported done so far, over every table."""
    return sum(t["done"] for t in steer.tables.values())
