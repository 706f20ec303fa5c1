"""A user rule given as ``kind: sql`` (docs/spec.md) carries Data Hub through the whole runbook
with every guarantee its ``default_else_owner`` rule has: tests/specs/datahub-sql-rule.spec.yaml
is runbooks/datahub.spec.yaml with the rule written as a set (tests/specs/rules/), and the run
gives every row what the default spec's rule gives it (conftest.expected_workspaces, in plain
Python): 00 refuses naming the users it cannot place, the run quarantines them and the collision
losers, 30 passes, 60 removes the guard, 90 puts every quarantined row back exactly."""

from __future__ import annotations

from pathlib import Path

from conftest import (ROOT, TENANT, cli, column_states, expected_workspaces, notebook_text, query, schema_snapshot,
                      snapshot, stage_lines, write_runbook)

from tenancy_runbook import db, spec
from tenancy_runbook.stages import check_backfill

SPEC = ROOT / "tests" / "specs" / "datahub-sql-rule.spec.yaml"
STAGES = ("00_preflight", "10_add_workspace_columns", "20_backfill", "30_check_backfill",
          "40_enforce_not_null", "50_post_verify", "60_remove_guard")
QUARANTINE = "datahub_quarantine"


def runbook(tmp_path: Path, name: str, stages, **parameters) -> Path:
    """A runbook of Data Hub that names the kind: sql spec."""
    return write_runbook(tmp_path, name, SPEC, stages, **parameters)


def rows(url: str, schema: str = "public") -> dict:
    """{table: {id: the row as it was before the migration, as text}}, live or quarantined."""
    out = {}
    for table in TENANT:
        present = query(url, "SELECT to_regclass(%s) IS NOT NULL", [f'{schema}."{table}"'])[0][0]
        out[table] = dict(query(url, """SELECT t."id", (to_jsonb(t) - 'workspaceId' - 'reason' - 'run_id'
                                                        - 'quarantined_at')::text FROM {s}.{t} AS t""",
                                s=schema, t=table)) if present else {}
    return out


def kept_aside(url: str, expected: dict) -> dict:
    """{table: ids the run must quarantine}: rows the rule cannot place (expected None), and the
    collision losers of Connection (workspaceId, provider), all but the most recently updated,
    the lowest id on a tie, with their MetricDaily and Insight rows."""
    first = {}
    losers = set()
    for cid, provider in query(url, """SELECT "id", "provider" FROM "Connection" ORDER BY "updatedAt" DESC, "id" """):
        key = (expected["Connection"][cid], provider)
        if key[0] is not None and first.setdefault(key, cid) != cid:
            losers.add(cid)
    moved = {"Connection": losers, "ChatMessage": set()}
    moved |= {t: {i for i, c in query(url, 'SELECT "id", "connectionId" FROM {t}', t=t) if c in losers}
              for t in ("MetricDaily", "Insight")}
    return {t: {i for i, ws in expected[t].items() if ws is None} | moved[t] for t in TENANT}


def test_a_rule_given_as_sql_runs_the_whole_runbook_as_default_else_owner_does(datahub, tmp_path):
    s = spec.load(SPEC)
    assert s.user_rule.kind == "sql" and s.user_rule.users is None and s.user_rule.membership is None
    url = datahub(shared_pairs=3, collisions=1, orphans=1, ambiguous=1)
    expected = expected_workspaces(url)        # the default_else_owner rule, row by row, in Python
    aside = kept_aside(url, expected)
    unplaceable = {u for t in ("Connection", "ChatMessage")
                   for i, u in query(url, 'SELECT "id", "userId" FROM {t}', t=t) if expected[t][i] is None}
    assert unplaceable == {"usr_00000013", "usr_00000014"} and "conn_1_0" in aside["Connection"]
    before, data, schema = rows(url), snapshot(url), schema_snapshot(url)
    book = runbook(tmp_path, "datahub-sql-rule", STAGES, quiet_period="0")

    # on_orphan / on_collision fail (the default): 00 refuses, naming the users and what to do
    refused = cli("run", book, "--run-dir", tmp_path / "refused", url=url)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert stage_lines(refused.stdout, with_not_run=True) == {
        "00_preflight": "gate failed", **{st: "not run" for st in STAGES[1:]}}
    for user in sorted(unplaceable):
        assert f"{user} (no tenant by the rule)" in refused.stdout
    assert "datahub_user_workspace.sql" in refused.stdout and "-p on_orphan quarantine" in refused.stdout
    assert "conn_1_0" in refused.stdout and "collision" in refused.stdout
    assert "(orphan" not in refused.stdout and "ambiguous" not in refused.stdout     # no membership words
    assert "Traceback" not in refused.stdout + refused.stderr
    assert snapshot(url) == data and schema_snapshot(url) == schema

    # quarantine: the whole runbook, the guard removed at the end
    result = cli("run", book, "--run-dir", tmp_path / "run", "-p", "on_collision", "quarantine",
                 "-p", "on_orphan", "quarantine", url=url, timeout=600)

    assert result.returncode == 0, result.stdout + result.stderr
    assert stage_lines(result.stdout) == {st: "ok" for st in STAGES}
    checked = notebook_text(tmp_path / "run" / "30_check_backfill.ipynb")
    assert "PASSED: All Data Hub workspaceId values are backfilled (no NULLs)." in checked
    live, kept = rows(url), rows(url, QUARANTINE)
    for table in TENANT:
        assert set(kept[table]) == aside[table], table
        assert not set(live[table]) & set(kept[table]) and {**live[table], **kept[table]} == before[table], table
        placed = dict(query(url, 'SELECT "id", "workspaceId" FROM {t}', t=table))
        assert placed == {i: ws for i, ws in expected[table].items() if i not in aside[table]}, table
    reasons = dict(query(url, f'SELECT "id", reason FROM {QUARANTINE}."Connection"'))
    assert "collision" in reasons["conn_1_0"]
    assert all("the rule's SELECT gives its user none" in reasons[i] for i in aside["Connection"]
               if i.startswith(("conn_13_", "conn_14_")))
    assert column_states(url) == {t: "NO" for t in TENANT}
    assert query(url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenancy_runbook_%'") == [(0,)]
    # 30's rule check compares each row with the rule's own set: a row moved to another workspace shows
    (row, was), = query(url, """SELECT "id", "workspaceId" FROM "ChatMessage" ORDER BY "id" LIMIT 1""")
    query(url, """UPDATE "ChatMessage" SET "workspaceId" = (SELECT min("id") FROM "Workspace" WHERE "id" <> %s)
                  WHERE "id" = %s""", [was, row])
    with spec.using(s), db.connect(url, read_only=True) as conn:
        found = check_backfill.rule_mismatches(conn)
    query(url, 'UPDATE "ChatMessage" SET "workspaceId" = %s WHERE "id" = %s', [was, row])
    assert dict(zip(found["table"], found["mismatches"])) == {"Connection": 0, "MetricDaily": 0, "Insight": 0,
                                                              "ChatMessage": 1}

    # rollback: NOT NULL off, every quarantined row back exactly as it was
    back = runbook(tmp_path, "datahub-sql-rule-rollback", ["90_rollback"], confirm="true", restore_quarantine="true")
    rolled = cli("run", back, "--run-dir", tmp_path / "rollback", url=url)

    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert rows(url) == before
    assert all(not r for r in rows(url, QUARANTINE).values())
    assert column_states(url) == {t: "YES" for t in TENANT}


def test_a_rule_that_gives_a_user_two_tenants_is_refused_before_any_write(datahub, tmp_path):
    """The rule's SELECT must give each user at most one row: 00 refuses one that gives more,
    naming the users and the tenants it gives them, before anything is written."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "datahub_user_workspace.sql").write_text(      # every membership, not only the one owned
        'SELECT "userId" AS user_id, "workspaceId" AS tenant_id FROM "WorkspaceMember"\n')
    two = tmp_path / "two.spec.yaml"
    two.write_text(SPEC.read_text().replace("../../sql/migrations/", f"{ROOT}/sql/migrations/"))
    url = datahub(shared_pairs=3)                           # partners are members of each other's workspace
    before, schema = snapshot(url), schema_snapshot(url)

    result = cli("run", write_runbook(tmp_path, "two", two, STAGES), "--run-dir", tmp_path / "run", url=url)

    assert result.returncode == 1, result.stdout + result.stderr
    assert stage_lines(result.stdout) == {"00_preflight": "gate failed"}
    assert "gives 3 user(s) more than one row: usr_00000002 (2 rows: ws_1, ws_2)" in result.stdout, result.stdout
    assert "It must give each user at most one (user_id, tenant_id)" in result.stdout
    assert snapshot(url) == before and schema_snapshot(url) == schema
