"""The backfill yields to database health: a real streaming replica whose replay is paused, real
autovacuum workers (regular and anti-wraparound), and a role that cannot see either. The readings
are the server's, on a database of no app (a table of their own): no spec is involved. The
preflight's list of privileges follows the spec: that test runs once per app (Data Hub, and the
projects app of tests/apps/projects/)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from conftest import query
from test_privileges import as_role, roles  # noqa: F401 (a fixture)

from tenancy_runbook import db, health
from tenancy_runbook.stages import preflight
from tenancy_runbook.errors import GateFailed, RunbookError

MB = 2**20
TABLE = "Filler"


class Aborted(Exception):
    """What a control command's abort raises from on_poll."""


def make_wal(url: str, megabytes: int = 4) -> None:
    """About ``megabytes`` of WAL: rows of 1 kB into the test table."""
    query(url, 'CREATE TABLE IF NOT EXISTS "Filler" (pad text)')
    query(url, """INSERT INTO "Filler" SELECT repeat('x', 1000) FROM generate_series(1, %s)""", (megabytes * 1000,))


def poll(condition, bound_s: float = 60.0, every_s: float = 0.2):
    """condition()'s first truthy value, or its last value after ``bound_s`` (a generous bound:
    what is tested is the outcome, never how fast)."""
    deadline = time.monotonic() + bound_s
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def test_limits_from_the_notebook_parameters():
    assert health.Limits.from_params("64MB", "wait_wraparound", "1h") == health.Limits()
    assert health.Limits.from_params("0", "continue", "90s") == health.Limits(0, "continue", 90.0)
    with pytest.raises(RunbookError, match="max_replica_lag = '64 MiB'"):
        health.Limits.from_params("64 MiB", "wait", "1h")
    with pytest.raises(RunbookError, match="on_autovacuum = 'always'.*wait_wraparound, wait, continue"):
        health.Limits.from_params("64MB", "always", "1h")


# --------------------------------------------------------------------------- replica lag
def test_replica_lag_grows_while_replay_is_paused_and_drains_after_resume(database, replica):
    make_wal(database, 1)
    with db.connect(database) as conn:
        before = health.read(conn, TABLE)
        assert before.standbys >= 1 and before.lag_visible and before.autovacuum is None
        replica.pause()
        make_wal(database, 4)
        paused = health.read(conn, TABLE)
        assert paused.replica_lag > 1 * MB, paused
        assert health.over(paused, health.Limits(max_replica_lag=1 * MB)) == ("replica_lag", paused.replica_lag, 1 * MB)
        assert health.over(paused, health.Limits(max_replica_lag=0)) is None          # not watched
        assert health.over(paused, health.Limits(max_replica_lag=paused.replica_lag)) is None
        replica.resume()
        drained = poll(lambda: (r := health.read(conn, TABLE)).replica_lag is not None
                       and r.replica_lag < 1 * MB and r)
        assert drained and health.over(drained, health.Limits(max_replica_lag=1 * MB)) is None, drained


def test_the_throttle_waits_until_the_replica_catches_up(database, replica):
    replica.pause()
    make_wal(database, 4)
    throttle = health.Throttle(health.Limits(max_replica_lag=1 * MB, max_wait_s=0))
    throttle.POLL_S = 0.2
    resumed, states, polls = threading.Event(), [], []

    def resume():
        replica.resume()
        resumed.set()
    timer = threading.Timer(1.0, resume)
    timer.start()
    try:
        with db.connect(database) as conn:
            waited = throttle.wait(conn, TABLE, on_poll=lambda: polls.append(1), on_state=states.append)
            assert resumed.is_set(), "wait() returned while the replica was still paused"
            assert waited > 0 and states == ["waiting for replica"] and polls
            [episode] = throttle.episodes
            assert episode["table"] == TABLE and episode["signal"] == "replica_lag" and episode["limit"] == 1 * MB
            assert episode["value"] > 1 * MB and episode["seconds"] > 0 and episode["started_at"].endswith("+00:00")
            summary = throttle.summary()
            assert summary["episodes"] == 1 and summary["by_signal"] == {"replica_lag": episode["seconds"]}
            assert summary["replica_lag_max_bytes"] == episode["value"]
            assert summary["seconds"] == pytest.approx(waited, abs=0.01)
            # healthy again: no wait, no new episode; a reading at most every POLL_S
            time.sleep(throttle.POLL_S)
            samples = len(throttle.samples)
            assert throttle.wait(conn, TABLE) == 0.0 and throttle.wait(conn, TABLE) == 0.0
            assert len(throttle.samples) == samples + 1 and len(throttle.episodes) == 1
    finally:
        timer.cancel()
        timer.join()
    frame = throttle.samples_frame()
    assert list(frame.columns[:5]) == ["at", "table", "replica_lag", "standbys", "autovacuum"]
    assert frame["replica_lag_mb"].max() > 1 and str(frame["at"].dtype).startswith("datetime64")
    assert list(throttle.episodes_frame().columns) == ["table", "signal", "value", "limit", "started_at", "seconds"]


def test_the_throttle_gives_up_after_max_throttle_wait_and_obeys_a_raised_limit(database, replica):
    replica.pause()
    make_wal(database, 4)
    throttle = health.Throttle(health.Limits(max_replica_lag=1 * MB, max_wait_s=0.3))
    throttle.POLL_S = 0.1
    with db.connect(database) as conn:
        with pytest.raises(GateFailed) as failed:
            throttle.wait(conn, TABLE)
        message = str(failed.value)
        assert f"The backfill of {TABLE} has waited" in message and "max_throttle_wait = 0.3s" in message
        assert "over max_replica_lag = 1MB" in message
        assert "tenancy-runbook control set max_replica_lag 256MB" in message
        assert "resumes where it stopped" in message
        assert throttle.waited_s >= 0.3 and throttle.episodes[0]["seconds"] > 0
        # `control set max_replica_lag` while it waits: the next reading is under the new limit
        throttle = health.Throttle(health.Limits(max_replica_lag=1 * MB, max_wait_s=0))
        throttle.POLL_S = 0.1

        def raise_limit():
            throttle.limits.max_replica_lag = 1024 * MB
        assert throttle.wait(conn, TABLE, on_poll=raise_limit) > 0
        assert throttle.episodes[0]["limit"] == 1 * MB and len(throttle.episodes) == 1
        # a control command may abort the wait: the episode is still recorded
        throttle.limits.max_replica_lag = 1 * MB
        time.sleep(throttle.POLL_S)

        def abort():
            raise Aborted
        with pytest.raises(Aborted):
            throttle.wait(conn, TABLE, on_poll=abort)
        assert len(throttle.episodes) == 2 and throttle.episodes[1]["seconds"] > 0


def test_a_role_that_cannot_read_the_lag_is_told_to_grant_pg_monitor(database, replica, roles):  # noqa: F811
    role = roles("health", database)
    replica.pause()
    make_wal(database, 2)
    throttle = health.Throttle(health.Limits(max_replica_lag=1 * MB))
    throttle.POLL_S = 0
    with db.connect(as_role(database, role)) as conn:
        reading = health.read(conn, TABLE)
        assert reading.standbys >= 1 and not reading.lag_visible and reading.replica_lag is None, reading
        assert throttle.wait(conn, TABLE) == 0.0 and throttle.wait(conn, TABLE) == 0.0
        [warning] = throttle.warnings
        assert warning.startswith("replica lag cannot be read") and "GRANT pg_monitor TO" in warning
        assert health.visibility_warning(reading, health.Limits(max_replica_lag=0)) is None
        query(database, f"GRANT pg_monitor TO {role}")
        granted = health.read(conn, TABLE)
        assert granted.lag_visible and granted.replica_lag > 1 * MB, granted


# --------------------------------------------------------------------------- autovacuum
@pytest.fixture
def fast_autovacuum(server_url):
    """autovacuum_naptime = 1s on the test server while the test runs (a worker visits each
    database every naptime; the default is a minute), then as it was. Tests run one at a time, so
    only this test's database gets the attention; the setting is restored even when the test fails.
    Skips on a server that runs with autovacuum = off (this machine's PostgreSQL 15, for steady
    benchmarks: /etc/postgresql/15/main/conf.d/90-ci.conf), which the tests leave as it is."""
    if query(server_url, "SELECT current_setting('autovacuum')") != [("on",)]:
        pytest.skip("autovacuum = off on this server: no autovacuum worker to see (the embedded "
                    "server runs these tests; the manual VACUUM test covers the query here)")
    before = query(server_url, """SELECT setting FROM pg_file_settings
                                  WHERE name = 'autovacuum_naptime' AND sourcefile LIKE '%postgresql.auto.conf'
                                  ORDER BY seqno DESC LIMIT 1""")
    query(server_url, "ALTER SYSTEM SET autovacuum_naptime = '1s'")
    query(server_url, "SELECT pg_reload_conf()")
    try:
        yield
    finally:
        if before:
            query(server_url, "ALTER SYSTEM SET autovacuum_naptime = %s" % psycopg.sql.quote(before[0][0]))
        else:
            query(server_url, "ALTER SYSTEM RESET autovacuum_naptime")
        query(server_url, "SELECT pg_reload_conf()")


# Every page costs the worker a whole cost_limit, then it sleeps 100 ms: 150 pages take ~15 s,
# long enough to be seen. The database is dropped WITH (FORCE) afterwards, which ends the worker.
SLOW = "autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1"


def slow_table(url: str, options: str) -> None:
    query(url, f'CREATE TABLE "Slow" (id int, pad text) WITH ({SLOW}, {options})')
    query(url, """INSERT INTO "Slow" SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g""")


def autovacuum_reading(conn, table: str = "Slow"):
    return poll(lambda: (r := health.read(conn, table)).autovacuum and r)


def test_an_anti_wraparound_autovacuum_is_waited_for_and_seen_without_privileges(database, fast_autovacuum,
                                                                                   roles):  # noqa: F811
    # autovacuum's own trigger: the table's relfrozenxid older than its autovacuum_freeze_max_age
    # (100000 at least); autovacuum_enabled = off does not stop an anti-wraparound vacuum.
    slow_table(database, "autovacuum_enabled = off, autovacuum_freeze_max_age = 100000")
    burn_xids(database, 100001)
    role = roles("health", database)
    with db.connect(database) as conn, db.connect(as_role(database, role)) as unprivileged:
        reading = autovacuum_reading(conn)
        assert reading and reading.autovacuum == "wraparound", reading
        [row] = db.rows(conn, "health/autovacuum", {"table": "Slow"})
        assert row["autovacuum"] is True and row["wraparound"] is True
        assert health.over(reading, health.Limits()) == ("autovacuum", "wraparound", "wait_wraparound")
        assert health.over(reading, health.Limits(on_autovacuum="wait")) == ("autovacuum", "wraparound", "wait")
        assert health.over(reading, health.Limits(on_autovacuum="continue")) is None
        # a role without pg_monitor sees neither the worker's table nor its query text: pg_locks
        # finds the table, the table's age tells anti-wraparound
        [hidden] = db.rows(unprivileged, "health/autovacuum", {"table": "Slow"})
        assert hidden["autovacuum"] is None and hidden["wraparound"] is True and hidden["pid"] == row["pid"]
        assert health.read(unprivileged, "Slow").autovacuum == "wraparound"
        assert health.read(conn, TABLE).autovacuum is None      # another table: nothing to wait for


def test_a_regular_autovacuum_is_waited_for_only_with_on_autovacuum_wait(database, fast_autovacuum):
    slow_table(database, "autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0")
    query(database, 'DELETE FROM "Slow" WHERE id % 10 = 0')
    with db.connect(database) as conn:
        reading = autovacuum_reading(conn)
        assert reading and reading.autovacuum == "regular", reading
        assert health.over(reading, health.Limits()) is None
        assert health.over(reading, health.Limits(on_autovacuum="wait")) == ("autovacuum", "regular", "wait")
        throttle = health.Throttle(health.Limits(on_autovacuum="wait", max_wait_s=0.2))
        throttle.POLL_S = 0.1
        with pytest.raises(GateFailed, match="autovacuum works on Slow .on_autovacuum = wait.*"
                                             "-p on_autovacuum wait_wraparound"):
            throttle.wait(conn, "Slow")
        assert throttle.episodes[0]["signal"] == "autovacuum" and throttle.episodes[0]["value"] == "regular"


def burn_xids(url: str, count: int) -> None:
    """Use up ``count`` transaction ids (their age is what makes a VACUUM anti-wraparound)."""
    query(url, """CREATE PROCEDURE burn_xids(n int) LANGUAGE plpgsql AS $$
                  BEGIN FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$""")
    with psycopg.connect(url, autocommit=True, options="-c synchronous_commit=off") as conn:
        conn.execute("CALL burn_xids(%s)", (count,))


def test_a_manual_vacuum_is_not_autovacuum_unless_its_owner_is_hidden(database, roles):  # noqa: F811
    query(database, 'CREATE TABLE "Slow" (id int, pad text) WITH (autovacuum_enabled = off, '
                    'autovacuum_freeze_max_age = 100000)')
    query(database, """INSERT INTO "Slow" SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g""")
    role = roles("health", database)
    vacuum = psycopg.connect(database, autocommit=True, options="-c vacuum_cost_delay=100 -c vacuum_cost_limit=1")
    pid = vacuum.info.backend_pid
    ended = []

    def run_vacuum():
        try:
            vacuum.execute('VACUUM "Slow"')
            ended.append("finished")
        except psycopg.errors.QueryCanceled:
            ended.append("canceled")
    worker = threading.Thread(target=run_vacuum)
    worker.start()
    try:
        with db.connect(database) as conn, db.connect(as_role(database, role)) as unprivileged:
            [row] = poll(lambda: db.rows(conn, "health/autovacuum", {"table": "Slow"}))
            assert row["pid"] == pid and row["autovacuum"] is False and row["wraparound"] is False
            assert health.read(conn, "Slow").autovacuum is None     # an operator's VACUUM: not waited for
            # a role without pg_monitor finds the VACUUM through pg_locks, cannot tell whose it is
            [hidden] = db.rows(unprivileged, "health/autovacuum", {"table": "Slow"})
            assert hidden["pid"] == pid and hidden["autovacuum"] is None and hidden["wraparound"] is False
            assert health.read(unprivileged, "Slow").autovacuum == "regular"   # so it assumes autovacuum
            # ... and tells anti-wraparound by the table's age, as autovacuum itself decides
            burn_xids(database, 100001)
            assert db.rows(unprivileged, "health/autovacuum", {"table": "Slow"})[0]["wraparound"] is True
            assert health.read(unprivileged, "Slow").autovacuum == "wraparound"
            assert health.read(conn, "Slow").autovacuum is None     # the query text says it is manual
    finally:
        query(database, "SELECT pg_cancel_backend(%s)", (pid,))
        worker.join()
        vacuum.close()
    assert ended == ["canceled"], "the VACUUM ended before it was looked at: make it slower"


def test_preflight_lists_pg_monitor_while_standbys_stream(seeded, replica, roles):  # noqa: F811
    url = seeded()
    role = roles("health", url)
    with db.connect(as_role(url, role), read_only=True) as conn:
        note = preflight.optional_note(preflight.privileges(conn))
        assert f"GRANT pg_monitor TO {role};  -- the replay lag of the " in note and "max_replica_lag" in note
        replica.stop()
        assert poll(lambda: "pg_monitor" not in preflight.optional_note(preflight.privileges(conn))), \
            "still listed once no standby streams"


def test_near_its_limit_the_replica_lag_is_read_before_every_batch(monkeypatch):
    """Once a second only, the lag could pass max_replica_lag by a second of every worker's WAL
    before the backfill sees it: from half the limit on, every batch reads it."""
    lags = iter([40 * MB, 20 * MB, 10 * MB])
    monkeypatch.setattr(health, "read", lambda conn, table: health.Reading(
        at="2026-01-01T00:00:00+00:00", replica_lag=next(lags), standbys=1, lag_visible=True, autovacuum=None))
    throttle = health.Throttle(health.Limits(max_replica_lag=64 * MB))
    read = []
    for _ in range(3):             # three batches within a second
        throttle.wait(None, TABLE)
        read.append(len(throttle.samples))
    assert read == [1, 2, 2], "40MB of 64MB: read again at once; 20MB: not before a second has passed"
    assert not throttle.episodes
