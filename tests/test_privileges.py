"""Least privilege: 00_preflight's gate names every privilege the run will need, before any
write, as the GRANT statements that give it; with exactly those granted the whole runbook passes
as a role that is neither superuser nor allowed to create anything by default. Each test once per
app (Data Hub, and the projects app of tests/apps/projects/)."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import column_states, notebook_text, query, run_runbook, stage_lines
from test_online import PRISMA_TABLE

from tenancy_runbook import db


def as_role(url: str, role: str) -> str:
    """The same database, logged in as ``role`` (no password: the test servers trust local users)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))


def dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def statements(stdout: str) -> list[str]:
    """The statements the gate printed, one per line (the CLI indents a gate's message)."""
    return [line.strip() for line in stdout.splitlines()
            if line.strip().startswith(("GRANT ", "ALTER TABLE "))]


@pytest.fixture
def roles(server_url):
    """new(prefix, database_url, login=True) -> a role name unique to the test: NOSUPERUSER,
    NOCREATEDB. Afterwards DROP OWNED in that database, then DROP ROLE."""
    made = []

    def new(prefix: str, url: str, login: bool = True) -> str:
        role = f"trb_{prefix}_{uuid.uuid4().hex[:8]}"
        query(url, f"CREATE ROLE {role} {'LOGIN' if login else 'NOLOGIN'} NOSUPERUSER NOCREATEDB")
        made.append((role, url))
        return role
    yield new
    for role, url in reversed(made):
        query(url, f"DROP OWNED BY {role}")
    for role, _ in reversed(made):
        query(server_url, f"DROP ROLE IF EXISTS {role}")


def lock_down(url: str, role: str, *, schema: str = "public") -> None:
    """PostgreSQL 15's defaults and a managed service's: nobody but the owner creates in schema
    public, nobody creates schemas; ``role`` may connect."""
    db = dbname(url)
    query(url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    query(url, f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC')
    query(url, f'GRANT CONNECT ON DATABASE "{db}" TO {role}')
    if schema != "public":
        query(url, f"GRANT USAGE ON SCHEMA {schema} TO {role}")


def nothing_written(url: str, app, *, prisma: str | None = None) -> None:
    assert query(url, """SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                         WHERE a.attname = 'workspaceId' AND c.relname = ANY(%s)""", [list(app.tables)]) == [(0,)]
    assert query(url, """SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                         WHERE n.nspname = 'tenancy_runbook'""") == [(0,)]
    assert query(url, """SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname IN ('tenancy_runbook', %s)""", [app.quarantine]) == [(0,)]
    if prisma:
        assert query(url, f'SELECT count(*) FROM {prisma}."_prisma_migrations"') == [(0,)]


def test_a_table_owner_without_create_rights_gets_the_grants_then_the_run_passes(app, seeded, roles, tmp_path):
    url = seeded()
    runner = roles("runner", url)
    for table in app.tables:
        query(url, f'ALTER TABLE "{table}" OWNER TO {runner}')
    lock_down(url, runner)
    as_runner = as_role(url, runner)

    refused = run_runbook(as_runner, tmp_path / "refused", app=app)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output
    assert stage_lines(refused.stdout) == {"00_preflight": "gate failed"}, output
    assert "Traceback" not in output
    nothing_written(url, app)
    assert query(url, "SELECT to_regnamespace('tenancy_runbook') IS NULL") == [(True,)]
    db = dbname(url)
    assert statements(refused.stdout) == [
        f"GRANT CREATE ON SCHEMA public TO {runner};",
        f'GRANT SELECT ON TABLE public."User" TO {runner};',
        f'GRANT SELECT ON TABLE public."WorkspaceMember" TO {runner};',
        f'GRANT SELECT ON TABLE public."Workspace" TO {runner};',
        f'GRANT REFERENCES ON TABLE public."Workspace" TO {runner};',
        f"GRANT CREATE ON DATABASE {db} TO {runner};",
    ], output

    for statement in statements(refused.stdout):
        query(url, statement)
    passed = run_runbook(as_runner, tmp_path / "passed", app=app)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert set(stage_lines(passed.stdout).values()) == {"ok"}
    assert set(column_states(url).values()) == {"NO"}
    preflight = notebook_text(tmp_path / "passed" / "00_preflight.ipynb")
    assert f"Privileges: {runner} holds every one the run needs" in preflight


def test_a_role_that_does_not_own_the_tables_is_told_whose_role_to_join(app, seeded, roles, tmp_path):
    """The first two tables (Data Hub: Connection and MetricDaily) belong to an owner role: joining
    it gives ownership. The others belong to the superuser: joining that role would make the runner
    a superuser, so the gate hands the tables over instead."""
    url = seeded()
    owner = roles("owner", url, login=False)
    runner = roles("runner", url)
    owned, others = app.tables[:2], app.tables[2:]
    for table in owned:
        query(url, f'ALTER TABLE "{table}" OWNER TO {owner}')
    lock_down(url, runner)

    refused = run_runbook(as_role(url, runner), tmp_path / "refused", "--to", "00_preflight", app=app)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    printed = statements(refused.stdout)
    assert printed[:1 + len(others)] == [f"GRANT {owner} TO {runner};",
                                         *(f'ALTER TABLE public."{t}" OWNER TO {runner};' for t in others)], \
        refused.stdout
    assert f"owner ({owner}) of table public.\"{owned[0]}\"" in refused.stdout
    nothing_written(url, app)

    for statement in printed:
        query(url, statement)
    passed = run_runbook(as_role(url, runner), tmp_path / "passed", "--to", "00_preflight", app=app)
    assert passed.returncode == 0, passed.stdout + passed.stderr


# app -> a small seed with rows to quarantine (an orphan)
IN_SCHEMA_APP = {
    "datahub": dict(users=6, connections_per_user=2, metric_days=2, metrics_per_day=1, insights_per_user=2,
                    messages_per_user=2, users_without_default=1, shared_pairs=1, orphans=1),
    "projects": dict(users=6, users_without_default=1, shared_pairs=1, orphans=1, projects_per_user=1,
                     tasks_per_project=2, comments_per_task=1, attachments_per_user=2, labels_per_user=2),
}


def test_schemas_an_administrator_created_need_no_create_on_the_database(app, database, roles, tmp_path):
    """The app in schema app (?schema=app), Prisma's migration table there, tenancy_runbook and
    the quarantine schema created beforehand by the administrator, rows to quarantine: the gate
    asks for USAGE and CREATE on those schemas, never for CREATE on the database."""
    query(database, "CREATE SCHEMA app")
    app_url = database + ("&" if "?" in database else "?") + "schema=app"
    app.seed(db.conninfo(app_url), **IN_SCHEMA_APP[app.name])
    query(db.conninfo(app_url), PRISMA_TABLE)       # in schema app, as Prisma puts it there
    query(database, "CREATE SCHEMA tenancy_runbook")
    query(database, f"CREATE SCHEMA {app.quarantine}")
    runner = roles("runner", database)
    for table in app.tables:
        query(database, f'ALTER TABLE app."{table}" OWNER TO {runner}')
    lock_down(database, runner, schema="app")
    as_runner = as_role(app_url, runner)

    refused = run_runbook(as_runner, tmp_path / "refused", "-p", "on_orphan", "quarantine", app=app)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert stage_lines(refused.stdout) == {"00_preflight": "gate failed"}
    printed = statements(refused.stdout)
    assert printed == [
        f"GRANT CREATE ON SCHEMA app TO {runner};",
        f'GRANT SELECT ON TABLE app."User" TO {runner};',
        f'GRANT SELECT ON TABLE app."WorkspaceMember" TO {runner};',
        f'GRANT SELECT ON TABLE app."Workspace" TO {runner};',
        f'GRANT REFERENCES ON TABLE app."Workspace" TO {runner};',
        f"GRANT USAGE ON SCHEMA {app.quarantine} TO {runner};",
        f"GRANT CREATE ON SCHEMA {app.quarantine} TO {runner};",
        f"GRANT USAGE ON SCHEMA tenancy_runbook TO {runner};",
        f"GRANT CREATE ON SCHEMA tenancy_runbook TO {runner};",
        f'GRANT SELECT ON TABLE app._prisma_migrations TO {runner};',
        f'GRANT INSERT ON TABLE app._prisma_migrations TO {runner};',
        f'GRANT UPDATE ON TABLE app._prisma_migrations TO {runner};',
    ], refused.stdout
    assert query(database, f"SELECT has_database_privilege('{runner}', current_database(), 'CREATE')") == [(False,)]
    nothing_written(database, app, prisma="app")

    for statement in printed:
        query(database, statement)
    first = run_runbook(as_runner, tmp_path / "first", "-p", "on_orphan", "quarantine", "--to", "20_backfill", app=app)
    assert first.returncode == 0, first.stdout + first.stderr
    # an application server of the old version, logged in as a role of its own, writes a row
    # without a workspaceId: the guard places it (it needs nothing in schema tenancy_runbook)
    app_role = roles("app", database)
    query(database, f'GRANT CONNECT ON DATABASE "{dbname(database)}" TO {app_role}')
    query(database, f'GRANT USAGE ON SCHEMA app TO {app_role}')
    query(database, f'GRANT INSERT ON app."{app.user_table}" TO {app_role}')
    user, workspace = query(database, """SELECT id, "defaultWorkspaceId" FROM app."User"
                                         WHERE "defaultWorkspaceId" IS NOT NULL ORDER BY id LIMIT 1""")[0]
    app.write_user_row(db.conninfo(as_role(app_url, app_role)), "from_the_app", user)
    placed = query(database, """SELECT "workspaceId" FROM app.{t} WHERE id = 'from_the_app'""", t=app.user_table)
    assert placed == [(workspace,)]
    rest = run_runbook(as_runner, tmp_path / "rest", "--from", "30_check_backfill", app=app)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    # the old version is gone (its row was placed seconds ago; 30-50 took longer than 1s): finish
    finish = run_runbook(as_runner, tmp_path / "finish", "-p", "quiet_period", "1s", runbook="runbooks/finish.yaml",
                         app=app)
    assert finish.returncode == 0, finish.stdout + finish.stderr
    runs = [stage_lines(r.stdout) for r in (first, rest, finish)]
    assert {status for lines in runs for status in lines.values()} == {"ok"}
    assert sum(len(lines) for lines in runs) == 7
    assert query(database, 'SELECT count(*) FROM app."_prisma_migrations" WHERE finished_at IS NOT NULL') == [(2,)]
    assert query(database, "SELECT count(*) > 0 FROM {q}.{t}", q=app.quarantine, t=app.tables[0]) == [(True,)]
    # 60_remove_guard took its functions and counts away and left the administrator's schema in place
    assert query(database, """SELECT count(*) FROM pg_proc
                              WHERE pronamespace = 'tenancy_runbook'::regnamespace""") == [(0,)]
    assert query(database, "SELECT to_regclass('tenancy_runbook.guard_placements')") == [(None,)]
    assert query(database, "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenancy_runbook'") == [(1,)]
