"""Bad input: a clear message naming what is wrong and what to do, exit 2 or 1, no traceback."""

from __future__ import annotations

import pytest
from conftest import cli, run_runbook


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


def test_database_without_datahub_tables(database, tmp_path):
    result = run_runbook(database, tmp_path / "run")
    assert_clean_failure(result, 1, "00_preflight", "gate failed", "tables missing: Workspace, User",
                         "Point DATABASE_URL at the Data Hub database")


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


def test_parameter_of_wrong_type(tmp_path):
    result = cli("run", "runbooks/rollback.yaml", "-p", "confirm", "maybe", url="postgresql://x@127.0.0.1:1/x")
    assert_clean_failure(result, 2, "parameter 'confirm' of stage 90_rollback expects bool, got 'maybe'")


@pytest.mark.parametrize("text, words", [
    ("stages: [00_preflight\n", ["is not valid YAML"]),
    ("name: x\n", ["non-empty 'stages' list"]),
    ("stages:\n  - notebook: 15_not_a_stage\n", ["unknown stage '15_not_a_stage'", "00_preflight"]),
    ("stages:\n  - notebook: 00_preflight\n    parameters: {batch_size: 10}\n",
     ["stage 00_preflight has no parameter 'batch_size'"]),
    ("stagez: []\n", ["unknown key(s) stagez"]),
])
def test_invalid_runbook_file(tmp_path, text, words):
    book = tmp_path / "book.yaml"
    book.write_text(text)
    result = cli("run", book, url="postgresql://x@127.0.0.1:1/x")
    assert_clean_failure(result, 2, *words)


def test_missing_runbook_file(tmp_path):
    result = cli("run", tmp_path / "nope.yaml", url="postgresql://x@127.0.0.1:1/x")
    assert_clean_failure(result, 2, "cannot read runbook")


def test_unknown_command_is_usage_error():
    assert_clean_failure(cli("launch"), 2, "invalid choice")
