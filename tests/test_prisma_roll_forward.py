"""Prisma-native to the end: a rollback, then the migration carried forward again, then another
rollback. After each, Prisma's history agrees with the database: the migrations it lists,
replayed in name order on a fresh copy of the app's schema, give the database's schema (Prisma's
drift check), and the last of them says what the columns are. Once per app (each spec)."""

from __future__ import annotations

import hashlib
import json

from conftest import cli, column_states, notebook_text, query, run_runbook, schema_snapshot
from test_online import PRISMA_TABLE

from tenancy_runbook import spec


def history(url: str) -> list[tuple]:
    """(name, checksum) of every migration Prisma counts as applied, in its order (by name)."""
    return query(url, """SELECT migration_name, checksum FROM "_prisma_migrations"
                         WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name""")


def written(run_dir) -> dict:
    """{folder name: migration.sql text} of the migrations a run wrote into its directory."""
    return {p.parent.name: p.read_text() for p in run_dir.glob("*/migration.sql")}


def replayed_agrees(url: str, plain_url: str, texts: dict) -> None:
    """Prisma's drift check: the history's migrations, in its order, on the plain schema."""
    query(plain_url, PRISMA_TABLE)
    for name, checksum in history(url):
        assert hashlib.sha256(texts[name].encode()).hexdigest() == checksum, name
        query(plain_url, texts[name])
    assert schema_snapshot(url) == schema_snapshot(plain_url)


def test_rollback_then_forward_then_rollback_keeps_prismas_history_true(app, seeded, plain_database, tmp_path):
    url = seeded()
    query(url, PRISMA_TABLE)
    m1, m2 = spec.load(app.spec).migrations.add_column, spec.load(app.spec).migrations.not_null
    texts = {m1.name: m1.sql.read_text(), m2.name: m2.sql.read_text()}
    base = m2.name.split("_", 1)[1]
    assert run_runbook(url, tmp_path / "run").returncode == 0
    first = notebook_text(tmp_path / "run" / "40_enforce_not_null.ipynb")
    assert f"Prisma's history: nothing more to record; its last word on these columns is {m2.name}" in first
    assert not written(tmp_path / "run")

    back = run_runbook(url, tmp_path / "back", "-p", "confirm", "true", runbook="runbooks/rollback.yaml")
    assert back.returncode == 0, back.stdout + back.stderr
    (rollback, rollback_sql), = written(tmp_path / "back").items()
    assert rollback.endswith(f"_{base}_rollback") and rollback_sql == texts[m2.name].replace("SET NOT NULL", "DROP NOT NULL")
    texts[rollback] = rollback_sql

    # carried forward again: NOT NULL, and the history's last word says so, by a new migration
    forward = run_runbook(url, tmp_path / "forward")

    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert column_states(url) == {t: "NO" for t in app.tables}
    (again, again_sql), = written(tmp_path / "forward").items()
    assert again == f"{again[:14]}_{base}" and again > rollback, (again, rollback)
    assert again_sql == texts[m2.name], "what prisma migrate dev writes when the fields are String again"
    texts[again] = again_sql
    assert [n for n, _ in history(url)] == [m1.name, m2.name, rollback, again]
    sha256 = hashlib.sha256(again_sql.encode()).hexdigest()
    manifest = json.loads((tmp_path / "forward" / "manifest.json").read_text())
    assert manifest["artifacts"][f"{again}/migration.sql"] == sha256
    summary = next(s["summary"] for s in manifest["stages"] if s["name"] == "40_enforce_not_null")
    assert (summary["prisma_migration"], summary["prisma_history"]) == (
        f"{again}/migration.sql", "recorded as applied in _prisma_migrations")
    assert f"commit it as prisma/migrations/{again}/migration.sql" in \
        notebook_text(tmp_path / "forward" / "40_enforce_not_null.ipynb")
    assert cli("verify", tmp_path / "forward").returncode == 0

    # run once more: nothing more is recorded or written
    once_more = run_runbook(url, tmp_path / "once-more")
    assert once_more.returncode == 0 and not written(tmp_path / "once-more")
    assert len(history(url)) == 4

    # and rolled back again: a new rollback migration, after the one that made them required
    back_again = run_runbook(url, tmp_path / "back-again", "-p", "confirm", "true", runbook="runbooks/rollback.yaml")

    assert back_again.returncode == 0, back_again.stdout + back_again.stderr
    assert column_states(url) == {t: "YES" for t in app.tables}
    (second, second_sql), = written(tmp_path / "back-again").items()
    assert second.endswith(f"_{base}_rollback") and second > again and second_sql == rollback_sql
    texts[second] = second_sql
    assert [n for n, _ in history(url)] == [m1.name, m2.name, rollback, again, second]
    replayed_agrees(url, plain_database, texts)
