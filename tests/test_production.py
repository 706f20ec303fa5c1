"""Where production runs: a transaction-pooling PgBouncer in front, Prisma's own DATABASE_URL with
the app in another schema, and a role whose defaults would kill or block the stages. The transaction
pooler and the app in its own schema run once per app (Data Hub, and the projects app), each by its
spec."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import psycopg
from conftest import actual_workspaces, cli, expected_workspaces, query, run_runbook, stage_lines

from tenancy_runbook import db
from tenancy_runbook.paths import NOTEBOOKS_DIR

DEFAULTS = ("off", "0", "0")     # default_transaction_read_only, lock_timeout, statement_timeout


def papermill(notebook: str, out, url: str, *args: str):
    return subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / f"{notebook}.ipynb"), str(out),
                           "--no-progress-bar", *args], cwd=NOTEBOOKS_DIR, env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=300)


def dbname(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["dbname"]


def test_a_transaction_pooler_is_refused_and_its_pool_is_left_as_it_was(app, seeded, pgbouncer, tmp_path):
    url = seeded()
    bouncer = pgbouncer("transaction", pool_size=2)
    name = dbname(url)
    pooled = bouncer.url(name)
    assert [s[1:] for s in bouncer.server_states(name)] == [DEFAULTS] * 2

    # a read-only stage runs through it (its settings live and die with each transaction) ...
    preflight = papermill("00_preflight", tmp_path / "00.ipynb", pooled)
    assert preflight.returncode == 0, preflight.stderr[-2000:]
    # ... a writing stage alone (confirmed: a dry run only reads) refuses, and the runner refuses before anything runs
    alone = papermill("10_add_workspace_columns", tmp_path / "10.ipynb", pooled, "-p", "confirm", "True")
    assert alone.returncode != 0 and "transaction-pooling proxy" in alone.stderr, alone.stderr[-2000:]
    result = run_runbook(pooled, tmp_path / "run", app=app)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "transaction-pooling proxy" in output and "direct connection" in output and "directUrl" in output
    assert "Traceback" not in output
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    assert query(url, """SELECT count(*) FROM information_schema.columns WHERE column_name = 'workspaceId'
                         AND table_name = ANY(%s)""", [list(app.tables)]) == [(0,)]

    # every server connection of the pool shows the defaults afterwards
    states = bouncer.server_states(name)
    assert len({pid for pid, *_ in states}) == 2
    assert [s[1:] for s in states] == [DEFAULTS] * 2, states


def test_a_session_pooler_is_accepted(app, seeded, pgbouncer, tmp_path):
    """A session-mode PgBouncer keeps one server connection per client: safe, so the run goes on."""
    url = seeded()
    bouncer = pgbouncer("session", pool_size=4)
    pooled = bouncer.url(dbname(url))
    result = run_runbook(pooled, tmp_path / "run", "--to", "30_check_backfill", app=app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert actual_workspaces(url) == expected_workspaces(url)
    assert [s[1:] for s in bouncer.server_states(dbname(url))] == [DEFAULTS] * 4


def with_query(url: str, query_string: str) -> str:
    return url + ("&" if "?" in url else "?") + query_string


def test_prisma_database_url_with_the_app_in_its_own_schema(app, database, tmp_path):
    """?schema=app selects the app's schema; Prisma's pool parameters are ignored, libpq's kept.
    A decoy copy of the tables in public stays untouched."""
    query(database, "CREATE SCHEMA app")
    app_direct = db.conninfo(with_query(database, "schema=app"))    # search_path=app
    app.seed(app_direct)                             # the app's small seed, in schema app
    app.load_schema(database)                        # the decoy, in public, never migrated
    prisma_url = with_query(database, "schema=app&connection_limit=5&pool_timeout=10&pgbouncer=false"
                                      "&socket_timeout=30&sslmode=disable&application_name=datahub-migrate")

    result = run_runbook(prisma_url, tmp_path / "run", app=app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(stage_lines(result.stdout).values()) == {"ok"}
    assert actual_workspaces(app_direct) == expected_workspaces(app_direct)
    assert query(database, """SELECT table_schema, table_name, is_nullable FROM information_schema.columns
                              WHERE column_name = 'workspaceId' AND table_name = ANY(%s) ORDER BY 2""",
                 [list(app.tables)]) == [("app", t, "NO") for t in sorted(app.tables)]
    assert query(database, """SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'
                              AND indexname LIKE '%workspaceId%'""") == [(0,)]
    # the manifest names the schema, never a password; plan reads the same URL
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert '"schema": "app"' in manifest and "(schema app)" in manifest
    plan = cli("plan", app.runbook(), "--no-sql", url=prisma_url)
    assert plan.returncode == 0 and "(schema app)" in plan.stdout, plan.stdout + plan.stderr


def as_role(url: str, role: str) -> str:
    """The same database, logged in as ``role`` (no password: the test servers trust local users)."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))


def test_role_defaults_neither_kill_nor_block_the_stages(app, seeded, server_url, tmp_path):
    """A role whose defaults are hostile: statements killed after 100 ms, lock waits after 100 ms,
    every transaction read-only. While preflight runs, another session holds a lock on
    WorkspaceMember for a while: preflight's query waits for it (longer than the role allows) and
    goes on. Every stage's transactions set their own timeouts and READ WRITE, and the run passes."""
    url = seeded()
    role = f"trb_hostile_{uuid.uuid4().hex[:8]}"
    query(server_url, f'CREATE ROLE "{role}" LOGIN SUPERUSER')
    try:
        for setting, value in (("statement_timeout", "100ms"), ("lock_timeout", "100ms"),
                               ("default_transaction_read_only", "on")):
            query(server_url, f'ALTER ROLE "{role}" SET {setting} = \'{value}\'')
        hostile = as_role(url, role)
        with psycopg.connect(hostile, autocommit=True) as conn:     # the defaults really are hostile
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == "100ms"
            assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"
        blocker = psycopg.connect(url)
        blocker.execute('LOCK TABLE "WorkspaceMember" IN ACCESS EXCLUSIVE MODE')
        waited = release_when_waiting(url, blocker, '"WorkspaceMember"', hold=1.0)
        try:
            result = run_runbook(hostile, tmp_path / "run", "--to", "50_post_verify", app=app)
        finally:
            blocker.close()
        assert waited.is_set(), "preflight never waited for the lock"
        assert result.returncode == 0, result.stdout + result.stderr
        assert actual_workspaces(url) == expected_workspaces(url)
    finally:
        query(url, f'DROP OWNED BY "{role}" CASCADE')
        query(server_url, f'DROP ROLE "{role}"')


def release_when_waiting(url: str, blocker, table: str, hold: float) -> threading.Event:
    """End ``blocker``'s transaction ``hold`` seconds after a session was first seen waiting for
    a lock on ``table``; the event is set once that was seen."""
    seen = threading.Event()

    def watch():
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(12000):
                if conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                                [table]).fetchone()[0]:
                    seen.set()
                    break
                time.sleep(0.01)
        time.sleep(hold)
        blocker.rollback()
    threading.Thread(target=watch, daemon=True).start()
    return seen


def test_prisma_url_parameters_are_read_and_the_password_never_shown(tmp_path):
    # Data Hub only: URL parsing and redaction; the run stops at connecting, before any spec is read
    secret = "Pr1sma-S3cret"
    url = (f"postgresql://alice:{secret}@127.0.0.1:1/datahub?schema=app&connection_limit=5&pool_timeout=10"
           f"&pgbouncer=true&statement_cache_size=0&sslmode=disable&sslpassword=Key-{secret}")
    dsn, schema = db.split_url(url)
    assert schema == "app"
    assert psycopg.conninfo.conninfo_to_dict(db.conninfo(url)) == {
        "user": "alice", "password": secret, "host": "127.0.0.1", "port": "1", "dbname": "datahub",
        "sslmode": "disable", "sslpassword": f"Key-{secret}", "options": "-c search_path=app"}
    assert db.describe(url) == "alice@127.0.0.1:1/datahub (schema app)"
    assert secret not in db.redact(f"failed for {url} and {dsn}")
    result = run_runbook(url, tmp_path / "run")
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "cannot connect to alice@127.0.0.1:1/datahub (schema app)" in output, output
    assert secret not in output and "invalid URI query parameter" not in output and "Traceback" not in output
