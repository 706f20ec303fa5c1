"""A busy database: writers of the old application version during the backfill, a backfill
killed mid-way, and a long transaction holding a lock during enforcement."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from conftest import (TENANT, actual_workspaces, column_states, expected_workspaces, kill_run, query,
                      run_runbook, stage_lines)

from tenancy_runbook.paths import ROOT

# The smallest batch the first pass makes is one heap page (about 100 MetricDaily rows), so the
# pause between batches is what stretches the backfill long enough to write or kill during it.
SLOW_BATCHES = ["-p", "batch_size", "20", "-p", "min_batch_size", "10", "-p", "max_batch_size", "20",
                "-p", "batch_pause_ms", "50"]


class OldAppWriter(threading.Thread):
    """An application server of the old version: writes rows without any workspaceId."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.errors = url, threading.Event(), []
        self.inserted = {t: [] for t in TENANT}

    def run(self):
        with psycopg.connect(self.url, autocommit=True) as conn:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                try:
                    self.write(conn, n)
                except psycopg.Error as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.005)

    def write(self, conn, n):
        user = f"usr_{(n % 12) + 1:08d}"
        kind = n % 5
        if kind == 0:
            conn.execute("""INSERT INTO "Workspace" (id, name) VALUES (%s, 'new')""", [f"new_ws_{n}"])
            conn.execute("""INSERT INTO "User" (id, email, "defaultWorkspaceId") VALUES (%s, %s, %s)""",
                         [f"new_user_{n}", f"new{n}@example.com", f"new_ws_{n}"])
            conn.execute("""INSERT INTO "Connection" (id, "userId", provider, status, "updatedAt")
                            VALUES (%s, %s, 'stripe', 'active', now())""", [f"new_conn_{n}", f"new_user_{n}"])
            self.inserted["Connection"].append(f"new_conn_{n}")
        elif kind == 1:
            conn.execute("""INSERT INTO "MetricDaily" (id, "connectionId", date, metric, value)
                            VALUES (%s, 'conn_5_0', DATE '2030-01-01' + %s, 'sessions', 1)""", [f"new_md_{n}", n])
            self.inserted["MetricDaily"].append(f"new_md_{n}")
        elif kind == 2:
            conn.execute("""INSERT INTO "Insight" (id, "userId", "connectionId", title, body)
                            VALUES (%s, %s, %s, 't', 'b')""",
                         [f"new_ins_{n}", user, f"conn_{(n % 12) + 1}_0" if n % 2 else None])
            self.inserted["Insight"].append(f"new_ins_{n}")
        elif kind == 3:
            conn.execute("""INSERT INTO "ChatMessage" (id, "userId", role, content) VALUES (%s, %s, 'user', 'hi')""",
                         [f"new_msg_{n}", user])
            self.inserted["ChatMessage"].append(f"new_msg_{n}")
        else:   # an update that does not touch workspaceId
            conn.execute("""UPDATE "ChatMessage" SET content = content || '.' WHERE id = %s""",
                         [f"msg_{(n % 12) + 1}_1"])


def test_rows_written_during_the_rollout_are_all_placed(datahub, tmp_path):
    url = datahub(metric_days=60)
    before = {t: {r[0] for r in query(url, "SELECT id FROM {t}", t=t)} for t in TENANT}
    writer = OldAppWriter(url)
    writer.start()
    try:
        result = run_runbook(url, tmp_path / "run", "--to", "50_post_verify", *SLOW_BATCHES)
    finally:
        writer.stop.set()
        writer.join()

    assert result.returncode == 0, result.stdout
    assert not writer.errors, writer.errors[:3]
    assert all(len(ids) > 3 for ids in writer.inserted.values()), writer.inserted
    live = actual_workspaces(url)
    for table in TENANT:     # nothing lost: every row from before and every row written meanwhile is live
        assert before[table] | set(writer.inserted[table]) == set(live[table]), table
    assert live == expected_workspaces(url)        # and placed by the rule, none NULL
    assert column_states(url) == {t: "NO" for t in TENANT}
    # the old version keeps working after NOT NULL until the guard is removed
    with psycopg.connect(url, autocommit=True) as conn:
        writer.write(conn, 10_003)
    assert query(url, """SELECT "workspaceId" FROM "ChatMessage" WHERE id = 'new_msg_10003'""") == \
        [(expected_workspaces(url)["ChatMessage"]["new_msg_10003"],)]


def test_backfill_killed_mid_way_loses_nothing_and_resumes(datahub, tmp_path):
    url = datahub(metric_days=60)
    assert run_runbook(url, tmp_path / "a", "--to", "10_add_workspace_columns").returncode == 0
    before = {t: set(ids) for t, ids in actual_workspaces(url).items()}
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "tenancy_runbook", "run", "runbooks/datahub-tenancy.yaml",
                             "--run-dir", str(tmp_path / "killed"), "--from", "20_backfill", "--to", "20_backfill",
                             *SLOW_BATCHES], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = query(url, 'SELECT count("workspaceId"), count(*) FROM "MetricDaily"')[0]
        if done[0] > 200:
            break
        time.sleep(0.05)
    kill_run(proc)     # the runner and its kernel, mid-batch
    time.sleep(0.5)

    done, total = query(url, 'SELECT count("workspaceId"), count(*) FROM "MetricDaily"')[0]
    assert 0 < done < total, "killed while the backfill was under way"
    assert {t: set(ids) for t, ids in actual_workspaces(url).items()} == before, "no row lost"

    resumed = run_runbook(url, tmp_path / "b", "--from", "20_backfill")
    assert resumed.returncode == 0, resumed.stdout
    assert actual_workspaces(url) == expected_workspaces(url)


def ddl_steps(notebook):
    """The DDL log a stage's notebook recorded, re-read from the executed notebook."""
    import json
    import re
    import pandas as pd
    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if "nb.ddl_steps(" in "".join(c["source"]))
    text = next("".join(o["data"]["text/plain"]) for o in cell["outputs"] if "text/plain" in o.get("data", {})
                and "text/markdown" not in o["data"] and "attempts" in "".join(o["data"]["text/plain"]))
    rows = re.findall(r"^\s*\d+\s+(.+?)\s{2,}(\w+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s*$", text, re.M)
    return pd.DataFrame([(s, t, int(a), int(w)) for s, t, a, w in rows],
                        columns=["step", "table", "attempts", "waited_ms"])


class TimedWriter(threading.Thread):
    """Inserts into MetricDaily as fast as it can and records how long each insert waited."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.latencies, self.errors = url, threading.Event(), [], []

    def run(self):
        with psycopg.connect(self.url, autocommit=True) as conn:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                t0 = time.monotonic()
                try:
                    conn.execute("""INSERT INTO "MetricDaily" (id, "connectionId", date, metric, value)
                                    VALUES (%s, 'conn_4_0', DATE '2031-01-01' + %s, 'orders', 1)""",
                                 [f"lat_{n}", n])
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.latencies.append(time.monotonic() - t0)
                time.sleep(0.01)


def release_when_ddl_waits(url: str, blocker, hold: float) -> threading.Thread:
    """End ``blocker``'s transaction ``hold`` seconds after a DDL was first seen waiting on MetricDaily."""
    def watch():
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(6000):
                if conn.execute("""SELECT count(*) FROM pg_locks WHERE NOT granted
                                   AND relation = '"MetricDaily"'::regclass""").fetchone()[0]:
                    break
                time.sleep(0.01)
        time.sleep(hold)
        blocker.rollback()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("release_after", [1.5, None])
def test_a_lock_holder_never_queues_writers_behind_enforcement(datahub, tmp_path, release_after):
    url = datahub()
    assert run_runbook(url, tmp_path / "a", "--to", "30_check_backfill").returncode == 0
    blocker = psycopg.connect(url)          # a long transaction that has read MetricDaily
    blocker.execute('SELECT count(*) FROM "MetricDaily"')
    blocker_pid = blocker.info.backend_pid
    writer = TimedWriter(url)
    writer.start()
    if release_after:
        release_when_ddl_waits(url, blocker, release_after)
    try:
        result = run_runbook(url, tmp_path / "b", "--from", "40_enforce_not_null", "--to", "40_enforce_not_null",
                             "-p", "lock_timeout", "100ms", "-p", "ddl_retry_total_s", "4" if release_after else "2")
    finally:
        writer.stop.set()
        writer.join()
        blocker.close()

    assert not writer.errors, writer.errors[:3]
    assert len(writer.latencies) > 50
    print(f"writer inserts during enforcement: {len(writer.latencies)}, max {max(writer.latencies) * 1000:.0f} ms, "
          f"p99 {sorted(writer.latencies)[int(len(writer.latencies) * 0.99)] * 1000:.0f} ms")
    # no writer waited much longer than one lock_timeout (100 ms), although the lock was held for seconds
    assert max(writer.latencies) < 0.6, sorted(writer.latencies)[-5:]
    if release_after:
        assert result.returncode == 0, result.stdout
        assert column_states(url) == {t: "NO" for t in TENANT}
        steps = ddl_steps(tmp_path / "b" / "40_enforce_not_null.ipynb")
        waited = steps[steps["step"] == "MetricDaily: add CHECK NOT VALID"].iloc[0]
        assert waited["attempts"] > 3 and waited["waited_ms"] >= 1400, waited   # it retried until released
        assert (steps.drop(index=waited.name)["attempts"] == 1).all()
    else:
        assert result.returncode == 1
        assert stage_lines(result.stdout) == {"40_enforce_not_null": "gate failed"}
        assert "could not get a lock on MetricDaily" in result.stdout
        assert f"pid {blocker_pid}" in result.stdout and 'SELECT count(*) FROM "MetricDaily"' in result.stdout
        assert column_states(url)["MetricDaily"] == "YES"
