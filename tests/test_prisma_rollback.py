"""Prisma-native rollback: after 90_rollback, Prisma's history agrees with the database.

The rollback writes the migration `prisma migrate dev` generates for `String?` into the run
directory and records it as applied, once. "Agrees" is checked as Prisma's drift check does it:
the migrations the history lists, replayed in order on a fresh copy of the schema, give the
database's schema. (No test here runs the Prisma CLI: the suite has no way to run it offline.)
Each test once per app (Data Hub, and the projects app of tests/apps/projects/), with its own
Prisma migrations.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone

from conftest import cli, column_states, notebook_text, query, run_runbook, schema_snapshot
from test_online import PRISMA_TABLE, checksum, migration_sql, migrations

ROLLBACK_NAME = {"datahub": "datahub_workspace_not_null_rollback",      # app -> the migration's name,
                 "projects": "projects_workspace_not_null_rollback"}    # after its timestamp
# app -> its tenant tables in the order of its migration 2, as Prisma writes them (Data Hub's files:
# alphabetical; the projects app's: the models' order in schema.prisma)
PRISMA_ORDER = {"datahub": ("ChatMessage", "Connection", "Insight", "MetricDaily"),
                "projects": ("Project", "Task", "Comment", "Attachment", "Label")}


def expected_migration(app) -> str:
    """What `prisma migrate dev` writes when the app's workspaceId fields become String? again."""
    return "\n".join(f'-- AlterTable\nALTER TABLE "{t}" ALTER COLUMN "workspaceId" DROP NOT NULL;\n'
                     for t in PRISMA_ORDER[app.name])


def rollback(url, run_dir):
    """The app's rollback runbook, confirmed, in a run directory outside outputs/ (the runner tells
    its kernels where it is)."""
    return run_runbook(url, run_dir, "-p", "confirm", "true", runbook="runbooks/rollback.yaml")


def migration_folder(app, run_dir):
    name = re.compile(rf"\d{{14}}_{ROLLBACK_NAME[app.name]}")
    folders = [p for p in run_dir.iterdir() if p.is_dir() and name.fullmatch(p.name)]
    assert len(folders) == 1, sorted(p.name for p in run_dir.iterdir())
    return folders[0]


def test_rollback_writes_and_records_the_prisma_migration_once(app, seeded, plain_database, tmp_path):
    url = seeded()
    m1, m2 = migrations(app)
    query(url, PRISMA_TABLE)
    assert run_runbook(url, tmp_path / "run").returncode == 0
    started = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")

    result = rollback(url, tmp_path / "rollback")

    assert result.returncode == 0, result.stdout + result.stderr
    assert column_states(url) == {t: "YES" for t in app.tables}
    folder = migration_folder(app, tmp_path / "rollback")
    name, text = folder.name, (folder / "migration.sql").read_bytes()
    assert started <= name[:14] <= datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    assert text.decode() == expected_migration(app) == migration_sql(m2).replace("SET NOT NULL", "DROP NOT NULL")
    sha256 = hashlib.sha256(text).hexdigest()

    # recorded as `prisma migrate resolve --applied` records it, after migration 2
    rows = query(url, """SELECT migration_name, checksum, finished_at IS NOT NULL AND finished_at = started_at,
                                logs, rolled_back_at, applied_steps_count
                         FROM "_prisma_migrations" ORDER BY migration_name""")
    assert rows == [(m1.name, checksum(m1), True, "", None, 0),
                    (m2.name, checksum(m2), True, "", None, 0),
                    (name, sha256, True, "", None, 0)]

    # no drift: the history's migrations, replayed in order on the plain schema, give the database's
    for migration in (PRISMA_TABLE, migration_sql(m1), migration_sql(m2), text.decode()):
        query(plain_database, migration)
    assert schema_snapshot(url) == schema_snapshot(plain_database)

    # the evidence names the file and its checksum; the archive holds it
    manifest = json.loads((tmp_path / "rollback" / "manifest.json").read_text())
    assert manifest["artifacts"][f"{name}/migration.sql"] == sha256
    summary = manifest["stages"][0]["summary"]
    assert (summary["prisma_migration"], summary["prisma_migration_sha256"]) == (f"{name}/migration.sql", sha256)
    assert summary["prisma_history"] == "recorded as applied in _prisma_migrations"
    assert f"    prisma migration: {name}/migration.sql" in result.stdout.splitlines()
    assert f"commit it as prisma/migrations/{name}/migration.sql" in \
        notebook_text(tmp_path / "rollback" / "90_rollback.ipynb")
    assert cli("verify", tmp_path / "rollback").returncode == 0

    # a second rollback records nothing more and writes the same file under the same name
    again = rollback(url, tmp_path / "again")

    assert again.returncode == 0, again.stdout + again.stderr
    assert migration_folder(app, tmp_path / "again").name == name
    assert (tmp_path / "again" / name / "migration.sql").read_bytes() == text
    assert query(url, 'SELECT count(*) FROM "_prisma_migrations"') == [(3,)]
    assert "    prisma history: already recorded as applied in _prisma_migrations" in again.stdout.splitlines()


def test_without_prisma_the_rollback_is_recorded_in_the_runbooks_own_history(app, seeded, tmp_path):
    url = seeded()
    m1, m2 = migrations(app)
    assert run_runbook(url, tmp_path / "run", "--to", "30_check_backfill").returncode == 0

    early = rollback(url, tmp_path / "early")          # migration 2 not applied: nothing to record

    assert early.returncode == 0, early.stdout + early.stderr
    assert not [p for p in (tmp_path / "early").iterdir() if p.is_dir()]
    assert "Prisma's history: nothing to record" in notebook_text(tmp_path / "early" / "90_rollback.ipynb")

    assert run_runbook(url, tmp_path / "rest", "--from", "40_enforce_not_null").returncode == 0
    result = rollback(url, tmp_path / "rollback")

    assert result.returncode == 0, result.stdout + result.stderr
    folder = migration_folder(app, tmp_path / "rollback")
    rows = query(url, "SELECT migration_name, checksum, run_id FROM tenancy_runbook.applied_migrations ORDER BY 1")
    assert rows[2] == (folder.name, hashlib.sha256((folder / "migration.sql").read_bytes()).hexdigest(), "rollback")
    assert [r[0] for r in rows] == [m1.name, m2.name, folder.name]
