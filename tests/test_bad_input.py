"""Bad input: a clear message naming what is wrong and what to do, exit 2 or 1, no traceback.
A database that is not the app's is refused once per app (Data Hub, the projects app); bad
arguments, parameters and files are refused before any spec is read, on Data Hub."""

from __future__ import annotations

import pytest
from conftest import cli, column_states, query, run_runbook, schema_snapshot, snapshot

from tenancy_runbook.cli import main



def assert_clean_failure(result, code: int, *words: str):
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output
    for word in words:
        assert word in output, output


def test_database_url_unset(tmp_path):
    result = cli("run", "runbooks/datahub-tenancy.yaml", "--run-dir", tmp_path)
    assert_clean_failure(result, 2, "DATABASE_URL is not set", "export DATABASE_URL=")


def test_database_unreachable_and_password_not_shown(tmp_path):
    url = "postgresql://alice:Sup3rSecretPw@127.0.0.1:1/datahub"
    result = run_runbook(url, tmp_path / "run")
    assert_clean_failure(result, 2, "cannot connect to alice@127.0.0.1:1/datahub", "Check that the server is up")
    assert "Sup3rSecretPw" not in result.stdout + result.stderr


def test_database_without_the_apps_tables(app, database, tmp_path):
    runbook = app.runbook()
    result = cli("run", runbook, "--run-dir", tmp_path / "run", url=database)     # an empty database
    assert_clean_failure(result, 1, "00_preflight", "gate failed",
                         f"Not a {app.title} database: tables missing: {', '.join(app.all_tables)}.",
                         f"Point DATABASE_URL at the {app.title} database")


def test_a_key_of_a_type_not_handled_yet_is_refused_before_any_write(app, seeded, tmp_path):
    """A migrated table's key of type uuid (a table no foreign key references, so its type can
    change): 00 names the column and its type, and says nothing was changed; nothing is."""
    url = seeded()
    ((table,),) = query(url, "SELECT c.relname::text FROM pg_class c WHERE c.relname = ANY(%(tables)s) "
                        "AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = c.oid) "
                        "ORDER BY 1 LIMIT 1", {"tables": list(app.tables)})
    query(url, "ALTER TABLE {t} ALTER COLUMN id TYPE uuid USING gen_random_uuid()", t=table)
    before, schema = snapshot(url), schema_snapshot(url)
    result = run_runbook(url, tmp_path / "run")
    assert_clean_failure(result, 1, "00_preflight", "gate failed",
                         f"Keys of a type the runbook does not handle yet: {table}.id (its key) is uuid.",
                         "text or varchar", "Nothing was changed.")
    assert snapshot(url) == before and schema_snapshot(url) == schema


@pytest.mark.parametrize("args, words", [
    (["--from", "99_nope"], ["unknown stage '99_nope' for --from", "00_preflight"]),
    (["--to", "nope"], ["unknown stage 'nope' for --to"]),
    (["--from", "40_enforce_not_null", "--to", "10_add_workspace_columns"], ["comes after"]),
    (["-p", "batch_sise", "10"], ["unknown parameter 'batch_sise'", "lock_timeout"]),
])
def test_bad_stage_or_parameter(tmp_path, args, words):
    result = cli("run", "runbooks/datahub-tenancy.yaml", "--run-dir", tmp_path, *args,
                 url="postgresql://nobody@127.0.0.1:1/x")
    assert_clean_failure(result, 2, *words)


DURATION = "a PostgreSQL duration: a number with an optional unit us|ms|s|min|h|d (case-sensitive; none = ms)"
BAD_VALUES = [   # runbook, -p arguments, what the message names: the parameter, the value, what is allowed
    ("datahub-tenancy", ["-p", "batch_size", "-5"], ["batch_size = -5 (-p): allowed: an integer >= 1"]),
    ("datahub-tenancy", ["-p", "lock_timeout", "forever"],
     ["lock_timeout = 'forever' (-p): not a PostgreSQL duration; allowed: " + DURATION]),
    ("datahub-tenancy", ["-p", "on_collision", "ignore"], ["on_collision = 'ignore' (-p): allowed: fail | quarantine"]),
    ("datahub-tenancy", ["-p", "on_orphan", "quarantien"],
     ["on_orphan = 'quarantien' (-p): allowed: fail | quarantine"]),
    ("datahub-tenancy", ["-p", "min_batch_size", "5000", "-p", "max_batch_size", "2000"],
     ["min_batch_size = 5000, batch_size = 1000, max_batch_size = 2000 (stages 20_backfill, 40_enforce_not_null): "
      "allowed: min_batch_size <= batch_size <= max_batch_size"]),
    ("datahub-tenancy", ["-p", "statement_timeout", "5S", "-p", "batch_statement_timeout", "-1"],
     ["statement_timeout = '5S' (-p): not a PostgreSQL duration", "batch_statement_timeout = '-1' (-p)"]),
    ("datahub-tenancy", ["-p", "target_batch_ms", "0", "-p", "batch_pause_ms", "-1", "-p", "max_listed", "-1"],
     ["target_batch_ms = 0 (-p): allowed: a number > 0", "batch_pause_ms = -1 (-p): allowed: a number >= 0",
      "max_listed = -1 (-p): allowed: an integer >= 0"]),
    ("datahub-tenancy", ["-p", "ddl_retry_total_s", "soon"], ["ddl_retry_total_s = 'soon' (-p): allowed: a number > 0"]),
    ("datahub-tenancy", ["-p", "batch_statement_timeout", "-1s"],
     ["batch_statement_timeout = '-1s' (-p): not a PostgreSQL duration"]),
    ("rollback", ["-p", "confirm", "maybe"], ["confirm = 'maybe' (-p): allowed: true or false"]),
    ("rollback", ["-p", "confirm", "true", "-p", "restore_quarantine", "yes"],
     ["restore_quarantine = 'yes' (-p): allowed: true or false"]),
]


@pytest.mark.parametrize("book, args, words", BAD_VALUES, ids=[" ".join(args[1::3]) for _, args, _ in BAD_VALUES])
def test_bad_parameter_value_exits_2_before_anything_runs(datahub, tmp_path, monkeypatch, capsys, book, args, words):
    # on Data Hub only: values are checked before the runner connects or reads the spec's tables
    url = datahub()
    before = snapshot(url), schema_snapshot(url)
    result = run_runbook(url, tmp_path / "run", *args, runbook=f"runbooks/{book}.yaml")
    assert_clean_failure(result, 2, "bad parameter value(s), nothing was run", *words,
                         f"tenancy-runbook plan runbooks/{book}.yaml` lists every parameter")
    assert (snapshot(url), schema_snapshot(url)) == before
    assert set(column_states(url).values()) == {"absent"}
    assert not (tmp_path / "run").exists()
    # checked before the runner connects at all: an unreachable server is not even tried
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@127.0.0.1:1/x")
    assert main(["run", f"runbooks/{book}.yaml", "--run-dir", str(tmp_path / "run"), *args]) == 2
    output = capsys.readouterr().err
    assert "cannot connect" not in output and all(word in output for word in words), output


@pytest.mark.parametrize("text, words", [
    ("stages: [00_preflight\n", ["is not valid YAML"]),
    ("name: x\n", ["non-empty 'stages' list"]),
    ("stages:\n  - notebook: 15_not_a_stage\n", ["unknown stage '15_not_a_stage'", "00_preflight"]),
    ("stages:\n  - notebook: 00_preflight\n    parameters: {batch_size: 10}\n",
     ["stage 00_preflight has no parameter 'batch_size'"]),
    ("stagez: []\n", ["unknown key(s) stagez"]),
    ("spec: nowhere.spec.yaml\nstages: [00_preflight]\n", ["'spec' names", "nowhere.spec.yaml", "not a file"]),
    ("spec: bad.spec.yaml\nstages: [00_preflight]\n", ["bad.spec.yaml, line 1", "version"]),
])
def test_invalid_runbook_file(tmp_path, text, words):
    book = tmp_path / "book.yaml"
    book.write_text(text)
    (tmp_path / "bad.spec.yaml").write_text("name: bad\n")     # a tenancy spec lacking nearly everything
    result = cli("run", book, url="postgresql://x@127.0.0.1:1/x")
    assert_clean_failure(result, 2, *words)


def test_missing_runbook_file(tmp_path):
    result = cli("run", tmp_path / "nope.yaml", url="postgresql://x@127.0.0.1:1/x")
    assert_clean_failure(result, 2, "cannot read runbook")


def test_unknown_command_is_usage_error():
    assert_clean_failure(cli("launch"), 2, "invalid choice")


@pytest.mark.parametrize("content, words", [
    ({"manifest.json": "{}", "00_preflight.ipynb": "{}"}, ["holds an archived run", "never overwritten"]),
    ({"notes.txt": "mine"}, ["is not empty"]),
])
def test_used_run_dir_exits_2_before_anything_runs(tmp_path, content, words):
    used = tmp_path / "run"
    used.mkdir()
    for name, text in content.items():
        (used / name).write_text(text)
    result = run_runbook("postgresql://nobody@127.0.0.1:1/x", used)      # no database needed to refuse
    assert_clean_failure(result, 2, f"the run directory {used}", *words, "Name a new directory with --run-dir")
    assert {p.name: p.read_text() for p in used.iterdir()} == content, "nothing in it was touched"


def test_an_empty_run_dir_is_fine(tmp_path):
    result = run_runbook("postgresql://nobody@127.0.0.1:1/x", tmp_path)
    assert_clean_failure(result, 2, "cannot connect to nobody@127.0.0.1:1/x")
