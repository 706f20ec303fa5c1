"""Every parameter is declared once (params.py): the notebooks, the runner and plan read it."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import papermill
import psycopg
import pytest
from conftest import cli, column_states, schema_snapshot, snapshot

from tenancy_runbook import params
from tenancy_runbook.errors import RunbookError
from tenancy_runbook.paths import NOTEBOOKS_DIR
from tenancy_runbook.stages import backfill

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_parameters_are_the_declared_ones_and_checked_before_connecting(path):
    found = papermill.inspect_notebook(str(path))
    assert found, path.name
    for name, info in found.items():
        assert name in params.PARAMS, f"{path.name}: parameter {name} is not declared in params.py"
        param = params.PARAMS[name]
        assert info["inferred_type_name"] == param.type.__name__, (path.name, name, info)
        default = ast.literal_eval(info["default"])
        assert type(default) is param.type and default == param.default, (path.name, name, default)
        assert info["help"] == param.help, (path.name, name)
    sources = ["".join(c["source"]) for c in cells(path)]
    first = next(i for i, c in enumerate(cells(path)) if "parameters" in c["metadata"].get("tags", []))
    assert sources[first] == params.cell(list(found)), f"{path.name}: render it with params.cell()"
    assert "params.check(globals())" in sources[first + 1], path.name
    assert any("nb.connect(" in s for s in sources[first + 2:]), path.name
    assert not any("nb.connect(" in s for s in sources[:first + 2]), path.name


def test_read_only_stages_take_a_statement_timeout_for_their_own_queries():
    for stem in ("00_preflight", "30_check_backfill", "50_post_verify"):
        assert "statement_timeout" in papermill.inspect_notebook(str(NOTEBOOKS_DIR / f"{stem}.ipynb"))
    assert params.duration_ms(params.PARAMS["statement_timeout"].default) >= 3_600_000   # generous


GOOD = ["0", "500", "500ms", "5s", "5 s", " 5s ", "1.5s", "1.5", ".5s", "5.s", "1min", "1.5min", "1h", "1d",
        "24d", "2147483647", "2147483647ms", "1000us", "1500us"]
BAD = ["forever", "", "  ", "-1", "-1s", "1S", "5MS", "1sec", "1 hour", "25d", "2147483648", "5ms5", "inf",
       "nan", "1_000", "5 s s"]
STRICTER = ["100us", "0.4", "010", "0x10", "+5s", "1e3", "-0"]   # PostgreSQL takes them; we refuse


def test_durations_are_read_as_postgresql_reads_them(database):
    with psycopg.connect(database, autocommit=True) as conn:
        def server_ms(text):
            # lock_timeout, read as statement_timeout is (milliseconds, the same bounds): a 1 ms
            # statement_timeout would cancel the query that reads it back on a busy server
            try:
                with conn.transaction():
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", (text,))
                    return int(conn.execute("SELECT setting FROM pg_settings WHERE name = 'lock_timeout'")
                               .fetchone()[0])
            except psycopg.errors.DataError:
                return None
            except psycopg.errors.InvalidParameterValue:
                return None
        for text in GOOD:
            assert params.duration_ms(text) == server_ms(text), text
            assert params.PARAMS["lock_timeout"].problem(text) is None
        for text in BAD:
            assert server_ms(text) is None, text
        for text in STRICTER:
            assert server_ms(text) is not None, text
        for text in BAD + STRICTER:
            with pytest.raises(ValueError):
                params.duration_ms(text)
            assert params.PARAMS["lock_timeout"].problem(text).startswith(f"lock_timeout = {text!r}: ")


@pytest.mark.parametrize("name, value, words", [
    ("on_collision", "ignore", ["on_collision = 'ignore'", "allowed: fail | quarantine"]),
    ("batch_size", 0, ["batch_size = 0", "an integer >= 1"]),
    ("batch_size", 10.5, ["batch_size = 10.5", "an integer >= 1"]),
    ("batch_size", True, ["batch_size = True", "an integer >= 1"]),
    ("target_batch_ms", float("inf"), ["target_batch_ms = inf", "a number > 0"]),
    ("batch_pause_ms", -1, ["batch_pause_ms = -1", "a number >= 0"]),
    ("ddl_retry_total_s", 0, ["ddl_retry_total_s = 0", "a number > 0"]),
    ("max_listed", -1, ["max_listed = -1", "an integer >= 0"]),
    ("confirm", "true", ["confirm = 'true'", "true or false"]),
    ("confirm", 1, ["confirm = 1", "true or false"]),
    ("unique_index", " ", ["unique_index = ' '", "a name, or empty for none"]),
    ("statement_timeout", None, ["statement_timeout = None", "a PostgreSQL duration: a number with an optional unit"]),
])
def test_a_bad_value_is_named_with_what_is_allowed(name, value, words):
    message = params.PARAMS[name].problem(value)
    for word in words:
        assert word in message, message


def test_values_that_are_allowed():
    assert params.problems({name: p.default for name, p in params.PARAMS.items()}) == []
    assert params.problems({"target_batch_ms": 50, "ddl_retry_total_s": 0.5, "max_listed": 0, "confirm": True,
                            "batch_statement_timeout": "0", "quarantine_run_id": ""}) == []


def test_batch_sizes_keep_their_order():
    assert params.relation_problems({"min_batch_size": 5, "batch_size": 5, "max_batch_size": 5}) == []
    [line] = params.relation_problems({"min_batch_size": 10, "batch_size": 5, "max_batch_size": 50})
    assert line == ("min_batch_size = 10, batch_size = 5, max_batch_size = 50: "
                    "allowed: min_batch_size <= batch_size <= max_batch_size")
    # a bad member is reported on its own, not as an order
    assert params.relation_problems({"min_batch_size": -1, "batch_size": 5, "max_batch_size": 50}) == []


def test_command_line_values_are_read_as_their_parameter_type():
    assert params.parse("batch_size", "-5") == -5
    assert params.parse("batch_size", "1.5") == 1.5            # then refused: not an integer
    assert params.parse("target_batch_ms", "0") == 0
    assert params.parse("confirm", "True") is True and params.parse("confirm", "false") is False
    assert params.parse("confirm", "yes") == "yes"               # then refused: only true/false
    assert params.parse("lock_timeout", "0") == "0"
    assert params.parse("on_orphan", " quarantine") == " quarantine"
    assert params.normalize("lock_timeout", 0) == "0" and params.normalize("batch_size", 0) == 0
    assert params.normalize("lock_timeout", 1.5) == "1.5" and params.normalize("confirm", 0) == 0


def test_notebook_check_and_the_stage_helpers_read_the_declaration():
    namespace = {"batch_size": -5, "on_orphan": "quarantien", "lock_timeout": 200, "In": [], "conn": None}
    with pytest.raises(RunbookError) as failed:
        params.check(namespace)
    message = str(failed.value)
    assert "batch_size = -5: allowed: an integer >= 1" in message
    assert "on_orphan = 'quarantien': allowed: fail | quarantine" in message
    assert "nothing ran, not even a connection" in message and "papermill -p NAME VALUE" in message
    assert namespace["lock_timeout"] == "200"                  # a bare number is a duration in ms
    params.check({"batch_size": 10, "min_batch_size": 10, "max_batch_size": 10})
    with pytest.raises(RunbookError, match="min_batch_size <= batch_size <= max_batch_size"):
        params.check({"batch_size": 10, "min_batch_size": 20, "max_batch_size": 30})
    assert backfill.CHOICES == params.PARAMS["on_orphan"].choices == params.PARAMS["on_collision"].choices
    with pytest.raises(RunbookError, match="on_orphan = 'quarantien'"):
        backfill.check_choice("on_orphan", "quarantien")
    with pytest.raises(RunbookError, match="batch_statement_timeout = 'forever'"):
        backfill.BatchPolicy(statement_timeout="forever").check()
    with pytest.raises(RunbookError, match="min_batch_size = 200, batch_size = 100"):
        backfill.BatchPolicy(batch_size=100, min_batch_size=200).check()


def test_plan_shows_what_each_parameter_allows():
    result = cli("plan", "runbooks/datahub-tenancy.yaml", "--no-sql")
    assert result.returncode == 0, result.stderr
    assert "on_collision = 'fail'    [fail | quarantine]" in result.stdout
    assert ("batch_size = 1000 (default)    [an integer >= 1; min_batch_size <= batch_size <= max_batch_size]"
            in result.stdout)
    assert "lock_timeout = '500ms'    [a duration, e.g. 500ms, 1.5s, 1h; 0 = no limit]" in result.stdout
    assert "a duration is a number with an optional unit us|ms|s|min|h|d (case-sensitive" in result.stdout
    rollback = cli("plan", "runbooks/rollback.yaml", "--no-sql", "-p", "confirm", "TRUE")
    assert "confirm = True    [true or false]" in rollback.stdout, rollback.stderr


def test_runbook_file_values_are_checked_and_named_by_where_they_come_from(tmp_path):
    book = tmp_path / "book.yaml"
    book.write_text("parameters: {lock_timeout: 0, max_batch_size: 500}\n"
                    "stages:\n  - 00_preflight\n  - notebook: 20_backfill\n    parameters: {batch_pause_ms: -1}\n")
    result = cli("plan", book, "--no-sql")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "batch_pause_ms = -1 (stage 20_backfill): allowed: a number >= 0" in result.stderr
    book.write_text("parameters: {lock_timeout: 0, max_batch_size: 5000}\nstages: [00_preflight, 20_backfill]\n")
    result = cli("plan", book, "--no-sql")
    assert result.returncode == 0, result.stderr
    assert "lock_timeout = '0'" in result.stdout                          # a bare number: milliseconds
    # the order is checked on what the stage gets: the runbook's max with -p's first size
    result = cli("plan", book, "--no-sql", "-p", "batch_size", "6000")
    assert result.returncode == 2
    assert ("min_batch_size = 100, batch_size = 6000, max_batch_size = 5000 (stage 20_backfill): "
            "allowed: min_batch_size <= batch_size <= max_batch_size") in result.stderr


@pytest.mark.parametrize("notebook, args, words", [
    ("20_backfill.ipynb", ["-p", "batch_size", "-5"], ["batch_size = -5: allowed: an integer >= 1"]),
    ("00_preflight.ipynb", ["-p", "statement_timeout", "forever"], ["statement_timeout = 'forever'"]),
])
def test_papermill_alone_stops_in_the_validation_cell_before_connecting(datahub, tmp_path, notebook, args, words):
    # on Data Hub only: the notebook stops before it connects, before any spec's table is read
    url = datahub()
    before = snapshot(url), schema_snapshot(url)
    out = tmp_path / notebook
    result = subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / notebook), str(out),
                             "--no-progress-bar", *args], cwd=NOTEBOOKS_DIR,
                            env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    executed = cells(out)
    failed = [c for c in executed if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1 and "params.check(globals())" in "".join(failed[0]["source"])
    error = next(o for o in failed[0]["outputs"] if o.get("output_type") == "error")
    assert error["ename"] == "RunbookError"
    for word in words + ["nothing ran, not even a connection", "papermill -p NAME VALUE"]:
        assert word in error["evalue"], error["evalue"]
    later = executed[executed.index(failed[0]) + 1:]
    assert all(c.get("execution_count") is None for c in later if c["cell_type"] == "code")
    assert "Connected to" not in out.read_text()
    assert (snapshot(url), schema_snapshot(url)) == before
    assert set(column_states(url).values()) == {"absent"}
