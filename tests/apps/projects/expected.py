"""The workspace every row of the "projects" app must end up with, worked out in plain Python
from the data as it is before the tenancy migration (README.md beside this file).

Independent of the runbook on purpose: it reads the pre-migration columns with plain SELECTs
and applies the rule here, so a test can compare the engine's outcome with it row by row.
Call it on the seeded database BEFORE the run: once rows are quarantined (deleted), the FK
actions have fired (``Attachment.commentId`` is ``ON DELETE SET NULL``) and the data it would
read is no longer the data the rule speaks of. Any ``workspaceId`` column is ignored.

The rule (same as Data Hub's, datahub-app.md):

- a user's workspace: ``User.defaultWorkspaceId`` when set, else the one workspace the user is
  ``OWNER`` of through ``WorkspaceMember``; no default and zero or several owned workspaces:
  none (the rule does not guess; ADMIN and MEMBER rows do not count);
- ``Project``: its owner's (``ownerId``);
- ``Task``: its project's (``projectId``), whoever the assignee is;
- ``Comment``: its task's (``taskId``), whoever the author is;
- ``Attachment``: its comment's when ``commentId`` is set (even when that is none: it does not
  fall back to the uploader), else its uploader's (``uploaderId``);
- ``Label``: its creator's (``createdById``); then ``(workspaceId, name)`` must be unique:
  of labels that would share one, the most recently updated (``updatedAt``) wins, ties going to
  the smallest ``id``; the others lose and are quarantined.

A row whose workspace is none is quarantined (reason: unplaceable); a collision loser too
(reason: collision).
"""

from __future__ import annotations

from collections import defaultdict

TABLES = ("Project", "Task", "Comment", "Attachment", "Label")  # in dependency order

MIGRATED, UNPLACEABLE, COLLISION = "migrated", "unplaceable", "collision"


def _rows(conn, statement: str) -> list[tuple]:
    return conn.execute(statement).fetchall()


def user_workspaces(conn) -> dict[str, str | None]:
    """{user id: the user's workspace, or None for an orphan or ambiguous user}."""
    owned: dict[str, list[str]] = defaultdict(list)
    for workspace_id, user_id, role in _rows(
            conn, 'SELECT "workspaceId", "userId", "role"::text FROM "WorkspaceMember"'):
        if role == "OWNER":
            owned[user_id].append(workspace_id)
    result = {}
    for user_id, default in _rows(conn, 'SELECT "id", "defaultWorkspaceId" FROM "User"'):
        if default is not None:
            result[user_id] = default
        elif len(owned[user_id]) == 1:
            result[user_id] = owned[user_id][0]
        else:
            result[user_id] = None
    return result


def label_collisions(conn) -> list[dict]:
    """Each (workspaceId, name) the rule gives to more than one label: the winner and losers."""
    users = user_workspaces(conn)
    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for label_id, name, creator, updated_at in _rows(
            conn, 'SELECT "id", "name", "createdById", "updatedAt" FROM "Label"'):
        workspace = users[creator]
        if workspace is not None:
            groups[(workspace, name)].append((updated_at, label_id))
    out = []
    for (workspace, name), labels in sorted(groups.items()):
        if len(labels) < 2:
            continue
        # most recent first; among equals, the smallest id (the ids the seed makes for equal
        # timestamps differ only in digits, so any collation orders them as Python does)
        ordered = sorted(labels, key=lambda x: x[1])
        ordered.sort(key=lambda x: x[0], reverse=True)
        out.append({"workspaceId": workspace, "name": name, "winner": ordered[0][1],
                    "losers": sorted(label_id for _, label_id in ordered[1:])})
    return out


def rule_workspaces(conn) -> dict[str, dict[str, str | None]]:
    """{table: {id: the workspace the rule gives the row, or None}}, collisions not yet settled."""
    users = user_workspaces(conn)
    project = {pid: users[owner] for pid, owner in _rows(conn, 'SELECT "id", "ownerId" FROM "Project"')}
    task = {tid: project[pid] for tid, pid in _rows(conn, 'SELECT "id", "projectId" FROM "Task"')}
    comment = {cid: task[tid] for cid, tid in _rows(conn, 'SELECT "id", "taskId" FROM "Comment"')}
    attachment = {aid: (comment[cid] if cid is not None else users[uploader])
                  for aid, cid, uploader in _rows(
                      conn, 'SELECT "id", "commentId", "uploaderId" FROM "Attachment"')}
    label = {lid: users[creator] for lid, creator in _rows(conn, 'SELECT "id", "createdById" FROM "Label"')}
    return {"Project": project, "Task": task, "Comment": comment, "Attachment": attachment, "Label": label}


def expected_outcomes(conn) -> dict[str, dict[str, tuple[str, str | None]]]:
    """{table: {id: (MIGRATED | UNPLACEABLE | COLLISION, workspaceId or None)}}."""
    out = {name: {row_id: (MIGRATED, ws) if ws is not None else (UNPLACEABLE, None)
                  for row_id, ws in mapping.items()}
           for name, mapping in rule_workspaces(conn).items()}
    for collision in label_collisions(conn):
        for loser in collision["losers"]:
            out["Label"][loser] = (COLLISION, None)
    return out


def expected_workspaces(conn) -> dict[str, dict[str, str | None]]:
    """{table: {id: the workspaceId the row must get, or None if it must be quarantined}}."""
    return {table: {row_id: workspace for row_id, (_, workspace) in rows.items()}
            for table, rows in expected_outcomes(conn).items()}


def summary(conn) -> dict[str, dict[str, int]]:
    """{table: {MIGRATED: n, UNPLACEABLE: n, COLLISION: n}}: the counts README.md states."""
    out = {}
    for table, rows in expected_outcomes(conn).items():
        counts = {MIGRATED: 0, UNPLACEABLE: 0, COLLISION: 0}
        for outcome, _ in rows.values():
            counts[outcome] += 1
        out[table] = counts
    return out


if __name__ == "__main__":  # python expected.py postgresql://.../db  -> the summary
    import json
    import sys

    import psycopg

    with psycopg.connect(sys.argv[1]) as connection:
        print(json.dumps({"summary": summary(connection), "label_collisions": label_collisions(connection)},
                         indent=2))
