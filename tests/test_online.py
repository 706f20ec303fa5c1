"""Migration 1 online: the same schema as Prisma's migration.sql, INVALID indexes repaired,
and the migration history recorded the way `prisma migrate resolve --applied` records it.
Each test once per app (Data Hub, and the projects app of tests/apps/projects/), with its own
migrations (its spec's)."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest
from conftest import notebook_text, query, run_runbook, schema_snapshot, stage_lines

from tenancy_runbook import spec

PRISMA_TABLE = """CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0)"""


def migrations(app) -> tuple[spec.Migration, spec.Migration]:
    """The app's migration 1 and migration 2, the Prisma migration folders its spec names."""
    found = spec.load(app.spec).migrations
    return found.add_column, found.not_null


def migration_sql(migration: spec.Migration) -> str:
    return migration.sql.read_text()


def checksum(migration: spec.Migration) -> str:
    """As Prisma records it: the sha256 of migration.sql."""
    return hashlib.sha256(migration_sql(migration).encode()).hexdigest()


def test_online_migrations_reach_exactly_prismas_schema(app, seeded, plain_database, tmp_path):
    url = seeded()
    m1, m2 = migrations(app)
    result = run_runbook(url, tmp_path / "run", "--to", "10_add_workspace_columns")
    assert result.returncode == 0, result.stdout
    query(plain_database, migration_sql(m1))
    assert schema_snapshot(url) == schema_snapshot(plain_database)

    assert run_runbook(url, tmp_path / "rest", "--from", "20_backfill").returncode == 0
    query(plain_database, migration_sql(m2))
    assert schema_snapshot(url) == schema_snapshot(plain_database)
    # once finished, nothing of the runbook's own is left in the application's schema
    assert run_runbook(url, tmp_path / "finish", "-p", "quiet_period", "0", runbook="runbooks/finish.yaml").returncode == 0
    assert query(url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenancy_runbook%%'") == [(0,)]


# app -> two rows of the table of its unique key (the spec's) that share its columns but the tenant
SAME_KEY = {"datahub": ["conn_1_0", "conn_3_0"],               # provider google_analytics
            "projects": ["lbl_00000001_1", "lbl_00000003_1"]}  # name bug


def test_invalid_index_from_a_failed_concurrent_build_is_rebuilt(app, seeded, tmp_path):
    url = seeded()
    key, (m1, _) = spec.load(app.spec).unique_keys[0], migrations(app)
    index = f'"{key.index}"'
    # a concurrent build that failed (two rows shared a key at the time) leaves an INVALID index
    query(url, 'ALTER TABLE {t} ADD COLUMN "workspaceId" TEXT', t=key.table)
    query(url, """UPDATE {t} SET "workspaceId" = 'ws_1' WHERE id = ANY(%s)""", [SAME_KEY[app.name]], t=key.table)
    create = re.search(rf"CREATE UNIQUE INDEX {index}[^;]*", migration_sql(m1))[0]
    with pytest.raises(Exception, match="could not create unique index"):
        query(url, create.replace("CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY"))
    assert query(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [index]) == [(False,)]
    query(url, """UPDATE {t} SET "workspaceId" = NULL WHERE id = ANY(%s)""", [SAME_KEY[app.name]], t=key.table)

    result = run_runbook(url, tmp_path / "run", "--to", "10_add_workspace_columns")

    assert result.returncode == 0, result.stdout
    assert query(url, "SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = %s::regclass",
                 [index]) == [(True, True)]
    assert f"build index {key.index}" in notebook_text(tmp_path / "run" / "10_add_workspace_columns.ipynb")


def test_migrations_are_recorded_as_prisma_migrate_resolve_does(app, seeded, tmp_path):
    url = seeded()
    m1, m2 = migrations(app)
    query(url, PRISMA_TABLE)
    # an earlier, unfinished attempt at migration 1 (prisma marks it rolled back on resolve)
    query(url, """INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at)
                  VALUES ('00000000-0000-4000-8000-000000000000', 'x', %s, now() - interval '1 day')""", [m1.name])

    assert run_runbook(url, tmp_path / "run").returncode == 0

    rows = query(url, """SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at,
                                applied_steps_count
                         FROM "_prisma_migrations" WHERE rolled_back_at IS NULL ORDER BY migration_name""")
    assert [r[3] for r in rows] == [m1.name, m2.name]
    for migration, (id_, recorded, finished, _, logs, rolled_back, started, steps) in zip((m1, m2), rows):
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", id_)
        assert recorded == checksum(migration)
        assert finished is not None and finished == started
        assert (logs, rolled_back, steps) == ("", None, 0)
    assert query(url, """SELECT rolled_back_at IS NOT NULL FROM "_prisma_migrations"
                         WHERE id = '00000000-0000-4000-8000-000000000000'""") == [(True,)]

    again = run_runbook(url, tmp_path / "again")
    assert again.returncode == 0
    assert query(url, 'SELECT count(*) FROM "_prisma_migrations"') == [(3,)]
    assert "already applied (recorded in _prisma_migrations)" in notebook_text(
        tmp_path / "again" / "10_add_workspace_columns.ipynb")


def test_a_migration_prisma_already_applied_is_not_applied_again(app, seeded, tmp_path):
    url = seeded()
    m1, _ = migrations(app)
    query(url, PRISMA_TABLE)
    query(url, migration_sql(m1))
    query(url, """INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, started_at,
                  applied_steps_count) VALUES (%s, %s, now(), %s, NULL, now(), 1)""",
          [str(uuid.uuid4()), checksum(m1), m1.name])

    result = run_runbook(url, tmp_path / "run", "--to", "10_add_workspace_columns")

    assert result.returncode == 0
    assert stage_lines(result.stdout)["10_add_workspace_columns"] == "ok"
    assert "already applied (recorded in _prisma_migrations)" in notebook_text(
        tmp_path / "run" / "10_add_workspace_columns.ipynb")
    assert query(url, 'SELECT count(*) FROM "_prisma_migrations"') == [(1,)]


def test_without_prisma_the_runbook_keeps_its_own_record(app, seeded, tmp_path):
    url = seeded()
    m1, m2 = migrations(app)
    assert run_runbook(url, tmp_path / "run").returncode == 0
    rows = query(url, "SELECT migration_name, checksum, run_id FROM tenancy_runbook.applied_migrations ORDER BY 1")
    assert [(r[0], r[2]) for r in rows] == [(m1.name, "run"), (m2.name, "run")]
    assert rows[0][1] == checksum(m1)


def test_set_not_null_skips_the_table_scan_after_the_validated_check(app, seeded, tmp_path):
    """PostgreSQL says so at DEBUG1: the CHECK proves the column has no NULL, so SET NOT NULL
    holds its ACCESS EXCLUSIVE lock for no table scan, whatever the table's size."""
    from tenancy_runbook import db
    from tenancy_runbook.locks import DDLLog, RetryPolicy
    from tenancy_runbook.stages import enforce_not_null

    url = seeded()
    assert run_runbook(url, tmp_path / "run", "--to", "30_check_backfill").returncode == 0
    notices = []
    with db.connect(url) as conn:
        conn.execute("SET client_min_messages = debug1")
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        log = DDLLog()
        enforce_not_null.apply(conn, RetryPolicy(), "test", log)
    proofs = [n for n in notices if "sufficient to prove that it does not contain nulls" in n]
    assert len(proofs) == len(app.tables), notices
    first, second = app.tables[:2]
    assert [s["step"] for s in log.steps][:4] == [f"{first}: add CHECK NOT VALID", f"{first}: validate CHECK",
                                                  f"{first}: SET NOT NULL", f"{second}: add CHECK NOT VALID"]
