"""Collisions and orphans: quarantined (nothing lost, nothing doubled), then restored exactly.
Each test once per app (Data Hub, and the projects app of tests/apps/projects/)."""

from __future__ import annotations

from conftest import app_of, column_states, notebook_text, query, run_runbook, stage_lines

ORIGINAL = {   # app -> the columns each table had before the migration
    "datahub": {
        "Connection": '"id", "userId", "provider", "status", "accessToken", "createdAt", "updatedAt"',
        "MetricDaily": '"id", "connectionId", "date", "metric", "value"',
        "Insight": '"id", "userId", "connectionId", "title", "body", "createdAt"',
        "ChatMessage": '"id", "userId", "role", "content", "createdAt"',
    },
    "projects": {
        "Project": '"id", "ownerId", "name", "description", "archived", "createdAt", "updatedAt"',
        "Task": '"id", "projectId", "assigneeId", "title", "status", "dueDate", "createdAt", "updatedAt"',
        "Comment": '"id", "taskId", "authorId", "body", "createdAt", "updatedAt"',
        "Attachment": '"id", "commentId", "uploaderId", "fileName", "contentType", "sizeBytes", "storageKey", '
                      '"createdAt"',
        "Label": '"id", "name", "color", "createdById", "createdAt", "updatedAt"',
    },
}
QUARANTINE = ["-p", "on_collision", "quarantine", "-p", "on_orphan", "quarantine"]

# app -> what the seed (shared_pairs=3, collisions=1, orphans=1, ambiguous=1) makes of the first
# pair, users 1 and 2, who share ws_1: the table of the unique key, its winners and losers (each
# of user 2's rows is the most recently updated of its pair); rows below a quarantined row, by id
# prefix, that go with it (Data Hub: a loser's metrics; projects: the comments two levels below
# the orphan's projects); the id prefixes of the orphan's and the ambiguous user's rows (users 13
# and 14) in the unique key's table.
PAIR = {
    "datahub": dict(table="Connection", winners={"conn_2_0", "conn_2_1"}, losers={"conn_1_0", "conn_1_1"},
                    below=("MetricDaily", "md_conn_1_0_"), unplaceable=("conn_13_", "conn_14_")),
    "projects": dict(table="Label", winners={"lbl_00000002_1", "lbl_00000002_2", "lbl_00000002_3"},
                     losers={"lbl_00000001_1", "lbl_00000001_2", "lbl_00000001_3"},
                     below=("Comment", "cmt_13_"), unplaceable=("lbl_00000013_", "lbl_00000014_")),
}
# app -> a row that takes a quarantined loser's old per-user key (an INSERT), and the line the
# refused restore prints for it
AGAIN = {
    "datahub": ("""INSERT INTO "Connection" (id, "userId", provider, status, "updatedAt", "workspaceId")
                   VALUES ('conn_again', 'usr_00000001', 'google_analytics', 'active', now(), 'ws_9')""",
                "Connection conn_1_0: live connection conn_again has the same (userId, provider)"),
    "projects": ("""INSERT INTO "Label" (id, name, color, "createdById", "updatedAt", "workspaceId")
                    VALUES ('lbl_again', 'bug', '#777777', 'usr_00000001', now(), 'ws_9')""",
                 "Label lbl_00000001_1: live label lbl_again has the same (createdById, name)"),
}


def rows(url: str, schema: str = "public") -> dict:
    """{table: {id: the original columns as text}} for live rows or quarantined ones."""
    out = {}
    for table, cols in ORIGINAL[app_of(url).name].items():
        present = query(url, "SELECT to_regclass(%s) IS NOT NULL", [f'{schema}."{table}"'])[0][0]
        out[table] = dict(query(url, f'SELECT "id", ROW({cols})::text FROM {{s}}.{{t}}', s=schema, t=table)) \
            if present else {}
    return out


def test_collisions_and_orphans_are_quarantined_then_restored_row_by_row(app, seeded, tmp_path):
    url = seeded(shared_pairs=3, collisions=1, orphans=1, ambiguous=1)
    pair = PAIR[app.name]
    before = rows(url)
    assert list(before) == list(app.tables)

    result = run_runbook(url, tmp_path / "run", *QUARANTINE)

    assert result.returncode == 0, result.stdout
    live, kept = rows(url), rows(url, app.quarantine)
    for table in app.tables:   # every row is live or quarantined, never both, never neither, unchanged
        assert not set(live[table]) & set(kept[table]), table
        assert {**live[table], **kept[table]} == before[table], table
    # the pair's rows in ws_1: user 2's are the most recently updated and stay, user 1's go
    assert pair["winners"] <= set(live[pair["table"]]) and pair["losers"] <= set(kept[pair["table"]])
    below, prefix = pair["below"]
    going = {r for r in before[below] if r.startswith(prefix)}
    assert going and {r for r in kept[below] if r.startswith(prefix)} == going
    assert all(r.startswith(pair["unplaceable"]) for r in kept[pair["table"]] if r not in pair["losers"])
    assert query(url, "SELECT DISTINCT run_id FROM {q}.{t}", q=app.quarantine, t=pair["table"]) == [("run",)]
    backfill = notebook_text(tmp_path / "run" / "20_backfill.ipynb")
    assert all(r in backfill for r in pair["winners"] | pair["losers"])     # what was kept and what was moved

    restored = run_runbook(url, tmp_path / "rollback", "-p", "confirm", "true", "-p", "restore_quarantine", "true",
                           runbook="runbooks/rollback.yaml")

    assert restored.returncode == 0, restored.stdout
    assert rows(url) == before        # every row back exactly as it was
    assert all(not r for r in rows(url, app.quarantine).values())
    assert column_states(url) == {t: "YES" for t in app.tables}


def test_restore_is_refused_when_a_row_would_break_a_constraint(app, seeded, tmp_path):
    url = seeded(shared_pairs=3, collisions=1)
    assert run_runbook(url, tmp_path / "run", *QUARANTINE).returncode == 0
    quarantined = rows(url, app.quarantine)
    # meanwhile user 1 made the row again (connected google_analytics, made a label "bug"): the
    # quarantined loser cannot come back
    insert, refusal = AGAIN[app.name]
    query(url, insert)

    result = run_runbook(url, tmp_path / "rollback", "-p", "confirm", "true", "-p", "restore_quarantine", "true",
                         runbook="runbooks/rollback.yaml")

    assert result.returncode == 1
    assert stage_lines(result.stdout) == {"90_rollback": "gate failed"}
    assert "Restore refused, nothing was restored" in result.stdout
    assert refusal in result.stdout
    assert rows(url, app.quarantine) == quarantined
