"""A busy database: writers of the old application version during the backfill, a backfill
killed mid-way, and a long transaction holding a lock during enforcement. The writers and the killed
backfill run once per app (Data Hub, and the projects app), each by its spec."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from conftest import (actual_workspaces, column_states, expected_workspaces, kill_run, query, run_runbook,
                      stage_lines)

from tenancy_runbook.paths import ROOT

# The smallest batch the first pass makes is one heap page (about 100 rows of MetricDaily or
# Comment), so the pause between batches is what stretches the backfill long enough to write or
# kill during it.
SLOW_BATCHES = ["-p", "batch_size", "20", "-p", "min_batch_size", "10", "-p", "max_batch_size", "20",
                "-p", "batch_pause_ms", "50"]


def signed_up(conn, n: int) -> None:
    """A user who signed up with a workspace of their own (new_user_<n>, new_ws_<n>): both apps'."""
    conn.execute("""INSERT INTO "Workspace" (id, name) VALUES (%s, 'new')""", [f"new_ws_{n}"])
    conn.execute("""INSERT INTO "User" (id, email, "defaultWorkspaceId") VALUES (%s, %s, %s)""",
                 [f"new_user_{n}", f"new{n}@example.com", f"new_ws_{n}"])


def datahub_write(conn, n: int) -> tuple[str, str] | None:
    """The n-th write of an old Data Hub server: (table, id) of the row it inserted, or None."""
    user = f"usr_{(n % 12) + 1:08d}"
    kind = n % 5
    if kind == 0:
        signed_up(conn, n)
        conn.execute("""INSERT INTO "Connection" (id, "userId", provider, status, "updatedAt")
                        VALUES (%s, %s, 'stripe', 'active', now())""", [f"new_conn_{n}", f"new_user_{n}"])
        return "Connection", f"new_conn_{n}"
    if kind == 1:
        conn.execute("""INSERT INTO "MetricDaily" (id, "connectionId", date, metric, value)
                        VALUES (%s, 'conn_5_0', DATE '2030-01-01' + %s, 'sessions', 1)""", [f"new_md_{n}", n])
        return "MetricDaily", f"new_md_{n}"
    if kind == 2:
        conn.execute("""INSERT INTO "Insight" (id, "userId", "connectionId", title, body)
                        VALUES (%s, %s, %s, 't', 'b')""",
                     [f"new_ins_{n}", user, f"conn_{(n % 12) + 1}_0" if n % 2 else None])
        return "Insight", f"new_ins_{n}"
    if kind == 3:
        conn.execute("""INSERT INTO "ChatMessage" (id, "userId", role, content) VALUES (%s, %s, 'user', 'hi')""",
                     [f"new_msg_{n}", user])
        return "ChatMessage", f"new_msg_{n}"
    # an update that does not touch workspaceId
    conn.execute("""UPDATE "ChatMessage" SET content = content || '.' WHERE id = %s""", [f"msg_{(n % 12) + 1}_1"])
    return None


def projects_write(conn, n: int) -> tuple[str, str] | None:
    """The n-th write of an old projects server: (table, id) of the row it inserted, or None."""
    user = f"usr_{(n % 12) + 1:08d}"
    kind = n % 6
    if kind == 0:
        signed_up(conn, n)
        conn.execute("""INSERT INTO "Project" (id, "ownerId", name, "updatedAt") VALUES (%s, %s, 'new', now())""",
                     [f"new_prj_{n}", f"new_user_{n}"])
        return "Project", f"new_prj_{n}"
    if kind == 1:
        conn.execute("""INSERT INTO "Task" (id, "projectId", "assigneeId", title, "updatedAt")
                        VALUES (%s, 'prj_5_1', %s, 'new', now())""", [f"new_tsk_{n}", user])
        return "Task", f"new_tsk_{n}"
    if kind == 2:
        conn.execute("""INSERT INTO "Comment" (id, "taskId", "authorId", body, "updatedAt")
                        VALUES (%s, 'tsk_5_1_1', %s, 'hi', now())""", [f"new_cmt_{n}", user])
        return "Comment", f"new_cmt_{n}"
    if kind == 3:   # on a comment every other time, else placed through its uploader
        conn.execute("""INSERT INTO "Attachment" (id, "commentId", "uploaderId", "fileName", "contentType",
                                                  "sizeBytes", "storageKey")
                        VALUES (%s, %s, %s, 'f.pdf', 'application/pdf', 1, 'uploads/new')""",
                     [f"new_att_{n}", f"cmt_{(n % 12) + 1}_1_1_1" if n // 6 % 2 else None, user])
        return "Attachment", f"new_att_{n}"
    if kind == 4:
        conn.execute("""INSERT INTO "Label" (id, name, color, "createdById", "updatedAt")
                        VALUES (%s, %s, '#777777', %s, now())""", [f"new_lbl_{n}", f"new {n}", user])
        return "Label", f"new_lbl_{n}"
    # an update that does not touch workspaceId
    conn.execute("""UPDATE "Comment" SET body = body || '.' WHERE id = %s""", [f"cmt_{(n % 12) + 1}_1_1_1"])
    return None


OLD_APP_WRITES = {"datahub": datahub_write, "projects": projects_write}


class OldAppWriter(threading.Thread):
    """An application server of the old version: writes rows of every table of the app without any
    workspaceId, and updates one."""

    def __init__(self, url: str, app):
        super().__init__(daemon=True)
        self.url, self.stop, self.errors = url, threading.Event(), []
        self.write_one = OLD_APP_WRITES[app.name]
        self.inserted = {t: [] for t in app.tables}

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
        written = self.write_one(conn, n)
        if written:
            table, row_id = written
            self.inserted[table].append(row_id)


def test_rows_written_during_the_rollout_are_all_placed(app, seeded, tmp_path):
    url = seeded(**app.rows(2880))
    before = {t: {r[0] for r in query(url, "SELECT id FROM {t}", t=t)} for t in app.tables}
    writer = OldAppWriter(url, app)
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
    for table in app.tables:     # nothing lost: every row from before and every row written meanwhile is live
        assert before[table] | set(writer.inserted[table]) == set(live[table]), table
    assert live == expected_workspaces(url)        # and placed by the rule, none NULL
    assert column_states(url) == {t: "NO" for t in app.tables}
    # the old version keeps working after NOT NULL until the guard is removed
    app.write_user_row(url, "late_row", "usr_00000008")
    assert query(url, """SELECT "workspaceId" FROM {t} WHERE id = 'late_row'""", t=app.user_table) == \
        [(expected_workspaces(url)[app.user_table]["late_row"],)]


def test_backfill_killed_mid_way_loses_nothing_and_resumes(app, seeded, tmp_path):
    url = seeded(**app.rows(2880))
    assert run_runbook(url, tmp_path / "a", "--to", "10_add_workspace_columns").returncode == 0
    before = {t: set(ids) for t, ids in actual_workspaces(url).items()}
    env = {**os.environ, "DATABASE_URL": url}
    tenancy = app.runbooks.get("runbooks/datahub-tenancy.yaml", "runbooks/datahub-tenancy.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "tenancy_runbook", "run", tenancy,
                             "--run-dir", str(tmp_path / "killed"), "--from", "20_backfill", "--to", "20_backfill",
                             *SLOW_BATCHES], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = query(url, 'SELECT count("workspaceId"), count(*) FROM {t}', t=app.big)[0]
        if done[0] > 200:
            break
        time.sleep(0.05)
    kill_run(proc)     # the runner and its kernel, mid-batch
    time.sleep(0.5)

    done, total = query(url, 'SELECT count("workspaceId"), count(*) FROM {t}', t=app.big)[0]
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


# app -> an insert of a row of app.big (%(id)s, the n-th: %(n)s), as an old server writes it
BIG_ROW = {
    "datahub": """INSERT INTO "MetricDaily" (id, "connectionId", date, metric, value)
                  VALUES (%(id)s, 'conn_4_0', DATE '2031-01-01' + %(n)s, 'orders', 1)""",
    "projects": """INSERT INTO "Comment" (id, "taskId", "authorId", body, "updatedAt")
                   VALUES (%(id)s, 'tsk_4_1_1', 'usr_00000004', 'orders', now())""",
}


class TimedWriter(threading.Thread):
    """Inserts into the app's big table as fast as it can and records how long each insert waited."""

    def __init__(self, url: str, app):
        super().__init__(daemon=True)
        self.url, self.stop, self.latencies, self.errors = url, threading.Event(), [], []
        self.insert = BIG_ROW[app.name]

    def run(self):
        with psycopg.connect(self.url, autocommit=True) as conn:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                t0 = time.monotonic()
                try:
                    conn.execute(self.insert, {"id": f"lat_{n}", "n": n})
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.latencies.append(time.monotonic() - t0)
                time.sleep(0.01)


def release_when_ddl_waits(url: str, blocker, table: str, hold: float) -> threading.Thread:
    """End ``blocker``'s transaction ``hold`` seconds after a DDL was first seen waiting on ``table``."""
    def watch():
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(6000):
                if conn.execute("""SELECT count(*) FROM pg_locks WHERE NOT granted
                                   AND relation = %s::regclass""", [f'"{table}"']).fetchone()[0]:
                    break
                time.sleep(0.01)
        time.sleep(hold)
        blocker.rollback()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("release_after", [1.5, None])
def test_a_lock_holder_never_queues_writers_behind_enforcement(app, seeded, tmp_path, release_after):
    url = seeded()
    assert run_runbook(url, tmp_path / "a", "--to", "30_check_backfill").returncode == 0
    blocker = psycopg.connect(url)          # a long transaction that has read the big table
    blocker.execute(f'SELECT count(*) FROM "{app.big}"')
    blocker_pid = blocker.info.backend_pid
    writer = TimedWriter(url, app)
    writer.start()
    if release_after:
        release_when_ddl_waits(url, blocker, app.big, release_after)
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
        assert column_states(url) == {t: "NO" for t in app.tables}
        steps = ddl_steps(tmp_path / "b" / "40_enforce_not_null.ipynb")
        waited = steps[steps["step"] == f"{app.big}: add CHECK NOT VALID"].iloc[0]
        assert waited["attempts"] > 3 and waited["waited_ms"] >= 1400, waited   # it retried until released
        assert (steps.drop(index=waited.name)["attempts"] == 1).all()
    else:
        assert result.returncode == 1
        assert stage_lines(result.stdout) == {"40_enforce_not_null": "gate failed"}
        assert f"could not get a lock on {app.big}" in result.stdout
        assert f"pid {blocker_pid}" in result.stdout and f'SELECT count(*) FROM "{app.big}"' in result.stdout
        assert column_states(url)[app.big] == "YES"
