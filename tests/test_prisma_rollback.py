"""Prisma-native rollback: after 90_rollback, Prisma's history agrees with the database.

The rollback writes the migration `prisma migrate dev` generates for `String?` into the run
directory and records it as applied, once. "Agrees" is checked as Prisma's drift check does it:
the migrations the history lists, replayed in order on a fresh copy of the schema, give the
database's schema. (No test here runs the Prisma CLI: the suite has no way to run it offline.)
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone

from conftest import TENANT, cli, column_states, notebook_text, query, run_runbook, schema_snapshot
from test_online import M1, M2, PRISMA_TABLE, migration_sql, plain_database  # noqa: F401 - a fixture

NAME = re.compile(r"(?P<stamp>\d{14})_datahub_workspace_not_null_rollback")
# what `prisma migrate dev` writes when the four fields become String? again
EXPECTED = "\n".join(f'-- AlterTable\nALTER TABLE "{t}" ALTER COLUMN "workspaceId" DROP NOT NULL;\n'
                     for t in sorted(TENANT))


def rollback(url, run_dir):
    """runbooks/rollback.yaml, confirmed, in a run directory outside outputs/ (the runner tells
    its kernels where it is)."""
    return cli("run", "runbooks/rollback.yaml", "--run-dir", run_dir, "-p", "confirm", "true", url=url)


def migration_folder(run_dir):
    folders = [p for p in run_dir.iterdir() if p.is_dir() and NAME.fullmatch(p.name)]
    assert len(folders) == 1, sorted(p.name for p in run_dir.iterdir())
    return folders[0]


def test_rollback_writes_and_records_the_prisma_migration_once(datahub, plain_database, tmp_path):
    url = datahub()
    query(url, PRISMA_TABLE)
    assert run_runbook(url, tmp_path / "run").returncode == 0
    started = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")

    result = rollback(url, tmp_path / "rollback")

    assert result.returncode == 0, result.stdout + result.stderr
    assert column_states(url) == {t: "YES" for t in TENANT}
    folder = migration_folder(tmp_path / "rollback")
    name, text = folder.name, (folder / "migration.sql").read_bytes()
    assert started <= NAME.fullmatch(name)["stamp"] <= datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    assert text.decode() == EXPECTED == migration_sql(M2).replace("SET NOT NULL", "DROP NOT NULL")
    sha256 = hashlib.sha256(text).hexdigest()

    # recorded as `prisma migrate resolve --applied` records it, after migration 2
    rows = query(url, """SELECT migration_name, checksum, finished_at IS NOT NULL AND finished_at = started_at,
                                logs, rolled_back_at, applied_steps_count
                         FROM "_prisma_migrations" ORDER BY migration_name""")
    assert rows == [(M1, hashlib.sha256(migration_sql(M1).encode()).hexdigest(), True, "", None, 0),
                    (M2, hashlib.sha256(migration_sql(M2).encode()).hexdigest(), True, "", None, 0),
                    (name, sha256, True, "", None, 0)]

    # no drift: the history's migrations, replayed in order on the plain schema, give the database's
    for migration in (PRISMA_TABLE, migration_sql(M1), migration_sql(M2), text.decode()):
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
    assert migration_folder(tmp_path / "again").name == name
    assert (tmp_path / "again" / name / "migration.sql").read_bytes() == text
    assert query(url, 'SELECT count(*) FROM "_prisma_migrations"') == [(3,)]
    assert "    prisma history: already recorded as applied in _prisma_migrations" in again.stdout.splitlines()


def test_without_prisma_the_rollback_is_recorded_in_the_runbooks_own_history(datahub, tmp_path):
    url = datahub()
    assert run_runbook(url, tmp_path / "run", "--to", "30_check_backfill").returncode == 0

    early = rollback(url, tmp_path / "early")          # migration 2 not applied: nothing to record

    assert early.returncode == 0, early.stdout + early.stderr
    assert not [p for p in (tmp_path / "early").iterdir() if p.is_dir()]
    assert "Prisma's history: nothing to record" in notebook_text(tmp_path / "early" / "90_rollback.ipynb")

    assert run_runbook(url, tmp_path / "rest", "--from", "40_enforce_not_null").returncode == 0
    result = rollback(url, tmp_path / "rollback")

    assert result.returncode == 0, result.stdout + result.stderr
    folder = migration_folder(tmp_path / "rollback")
    rows = query(url, "SELECT migration_name, checksum, run_id FROM tenancy_runbook.applied_migrations ORDER BY 1")
    assert rows[2] == (folder.name, hashlib.sha256((folder / "migration.sql").read_bytes()).hexdigest(), "rollback")
    assert [r[0] for r in rows] == [M1, M2, folder.name]
