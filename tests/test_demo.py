"""`tenancy-runbook demo`: embedded server, Data Hub schema, synthetic data, the whole runbook."""

from __future__ import annotations

from conftest import cli

from tenancy_runbook import embedded

TINY = ["--users", "8", "--metric-days", "3", "--shared-pairs", "2", "--users-without-default", "1"]


def servers() -> set:
    return set(embedded.BASE.glob("pg-*")) if embedded.BASE.exists() else set()


def test_demo_runs_the_whole_runbook_and_stops_its_server(tmp_path):
    before = servers()
    result = cli("demo", *TINY, "--run-dir", tmp_path / "run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seeded: Workspace 8, User 8, WorkspaceMember 10, Connection 16, MetricDaily 144" in result.stdout
    assert "50_post_verify" in result.stdout and "embedded server stopped" in result.stdout
    assert "runbooks/finish.yaml" in result.stdout, "the runbook's next: is printed, as by run"
    assert len(list((tmp_path / "run").glob("*.ipynb"))) == 6   # the guard stays: finish.yaml removes it
    assert servers() <= before


def test_demo_with_collisions_stops_at_preflight(tmp_path):
    result = cli("demo", *TINY, "--collisions", "1", "--run-dir", tmp_path / "run")
    assert result.returncode == 1
    assert "00_preflight                 gate failed" in result.stdout
    assert "collision" in result.stdout and "embedded server stopped" in result.stdout


def test_demo_rejects_impossible_options():
    result = cli("demo", "--users", "3", "--shared-pairs", "2")
    assert result.returncode == 2
    assert "2 * shared_pairs + users_without_default must not exceed users" in result.stderr
