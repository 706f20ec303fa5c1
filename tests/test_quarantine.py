"""Collisions and orphans: quarantined (nothing lost, nothing doubled), then restored exactly."""

from __future__ import annotations

from conftest import TENANT, column_states, notebook_text, query, run_runbook, stage_lines

ORIGINAL = {   # the columns each table had before the migration
    "Connection": '"id", "userId", "provider", "status", "accessToken", "createdAt", "updatedAt"',
    "MetricDaily": '"id", "connectionId", "date", "metric", "value"',
    "Insight": '"id", "userId", "connectionId", "title", "body", "createdAt"',
    "ChatMessage": '"id", "userId", "role", "content", "createdAt"',
}
QUARANTINE = ["-p", "on_collision", "quarantine", "-p", "on_orphan", "quarantine"]


def rows(url: str, schema: str = "public") -> dict:
    """{table: {id: the original columns as text}} for live rows or quarantined ones."""
    out = {}
    for table, cols in ORIGINAL.items():
        present = query(url, "SELECT to_regclass(%s) IS NOT NULL", [f'{schema}."{table}"'])[0][0]
        out[table] = dict(query(url, f'SELECT "id", ROW({cols})::text FROM {{s}}.{{t}}', s=schema, t=table)) \
            if present else {}
    return out


def test_collisions_and_orphans_are_quarantined_then_restored_row_by_row(datahub, tmp_path):
    url = datahub(shared_pairs=3, collisions=1, orphans=1, ambiguous=1)
    before = rows(url)

    result = run_runbook(url, tmp_path / "run", *QUARANTINE)

    assert result.returncode == 0, result.stdout
    live, kept = rows(url), rows(url, "datahub_quarantine")
    for table in TENANT:   # every row is live or quarantined, never both, never neither, unchanged
        assert not set(live[table]) & set(kept[table]), table
        assert {**live[table], **kept[table]} == before[table], table
    # the pair (ws_1, google_analytics): conn_2_0 is the most recently updated, conn_1_0 goes
    assert "conn_2_0" in live["Connection"] and "conn_1_0" in kept["Connection"]
    assert {m for m in kept["MetricDaily"] if m.startswith("md_conn_1_0_")} == \
        {m for m in before["MetricDaily"] if m.startswith("md_conn_1_0_")}
    assert all(c.startswith(("conn_13_", "conn_14_")) for c in kept["Connection"] if c not in
               ("conn_1_0", "conn_1_1"))   # the orphan's and the ambiguous user's
    assert query(url, """SELECT DISTINCT run_id FROM datahub_quarantine."Connection" """) == [("run",)]
    backfill = notebook_text(tmp_path / "run" / "20_backfill.ipynb")
    assert "conn_2_0" in backfill and "conn_1_0" in backfill     # what was kept and what was moved

    restored = run_runbook(url, tmp_path / "rollback", "-p", "confirm", "true", "-p", "restore_quarantine", "true",
                           runbook="runbooks/rollback.yaml")

    assert restored.returncode == 0, restored.stdout
    assert rows(url) == before        # every row back exactly as it was
    assert all(not r for r in rows(url, "datahub_quarantine").values())
    assert column_states(url) == {t: "YES" for t in TENANT}


def test_restore_is_refused_when_a_row_would_break_a_constraint(datahub, tmp_path):
    url = datahub(shared_pairs=3, collisions=1)
    assert run_runbook(url, tmp_path / "run", *QUARANTINE).returncode == 0
    quarantined = rows(url, "datahub_quarantine")
    # meanwhile the user connected google_analytics again: conn_1_0 cannot come back
    query(url, """INSERT INTO "Connection" (id, "userId", provider, status, "updatedAt", "workspaceId")
                  VALUES ('conn_again', 'usr_00000001', 'google_analytics', 'active', now(), 'ws_9')""")

    result = run_runbook(url, tmp_path / "rollback", "-p", "confirm", "true", "-p", "restore_quarantine", "true",
                         runbook="runbooks/rollback.yaml")

    assert result.returncode == 1
    assert stage_lines(result.stdout) == {"90_rollback": "gate failed"}
    assert "Restore refused, nothing was restored" in result.stdout
    assert "Connection conn_1_0: live connection conn_again has the same (userId, provider)" in result.stdout
    assert rows(url, "datahub_quarantine") == quarantined
