"""No e-mail address (or other personal field) in a run's evidence or on the terminal: users are
named by id. show_personal_data shows their e-mail addresses, in a notebook run alone only.
Each test once per app (Data Hub, and the projects app of tests/apps/projects/), but the runner's
refusal of the parameter (argument checking)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import cli, query, run_runbook, schema_snapshot, snapshot, stage_lines

from tenancy_runbook import db, quarantine
from tenancy_runbook.errors import GateFailed
from tenancy_runbook.locks import DDLLog, RetryPolicy
from tenancy_runbook.paths import NOTEBOOKS_DIR, ROOT
from tenancy_runbook.stages import add_workspace_columns

DIRTY = dict(users_without_default=1, orphans=1, ambiguous=1)


def emails(url: str) -> dict:
    return dict(query(url, 'SELECT "id", "email" FROM "User" ORDER BY "id"'))


def unplaceable(url: str) -> list[str]:
    """The orphan and the ambiguous user of DIRTY (the last two)."""
    return sorted(emails(url))[-2:]


def test_a_dirty_run_names_users_by_id_and_writes_no_email_anywhere(app, seeded, tmp_path):
    url = seeded(**DIRTY)
    users = emails(url)
    assert len(users) == 14 and all("@" in e for e in users.values())

    result = run_runbook(url, tmp_path / "run")

    assert result.returncode == 1, result.stdout + result.stderr
    assert stage_lines(result.stdout) == {"00_preflight": "gate failed"}
    orphan, ambiguous = unplaceable(url)
    assert f"{orphan} (orphan, owns 0)" in result.stdout
    assert f"{ambiguous} (ambiguous, owns 2)" in result.stdout
    output = (result.stdout + result.stderr).encode()
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert {"00_preflight.ipynb", "manifest.json"} <= {p.name for p in files}
    evidence = {p: p.read_bytes() for p in files}
    assert orphan.encode() in evidence[tmp_path / "run" / "00_preflight.ipynb"]   # the search sees the names
    for user, email in users.items():
        for where, text in [("the output", output)] + list(evidence.items()):
            assert email.encode() not in text, (user, where)
    for where, text in [("the output", output)] + list(evidence.items()):
        assert b"@example.com" not in text, where


def test_the_runner_refuses_show_personal_data_before_anything(datahub, tmp_path):
    # Data Hub only: argument checking, as the runner reads the runbook, whatever the spec says
    url = datahub(**DIRTY)
    rows, schema = snapshot(url), schema_snapshot(url)

    refused = run_runbook(url, tmp_path / "run", "-p", "show_personal_data", "true")

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert "show_personal_data = True (-p): the runner refuses it" in refused.stderr
    assert "run notebooks/00_preflight.ipynb alone" in refused.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    assert (snapshot(url), schema_snapshot(url)) == (rows, schema)
    for email in emails(url).values():
        assert email not in refused.stdout + refused.stderr

    book = tmp_path / "book.yaml"
    book.write_text("parameters: {show_personal_data: true}\nstages: [00_preflight]\n")
    from_file = cli("plan", book, "--no-sql")
    assert from_file.returncode == 2
    assert "show_personal_data = True (runbook 'parameters'): the runner refuses it" in from_file.stderr

    plan = cli("plan", "runbooks/datahub-tenancy.yaml", "--no-sql", "-p", "show_personal_data", "false")
    assert plan.returncode == 0, plan.stderr
    assert "show_personal_data = False    [true or false; only false in a runbook run]" in plan.stdout


def papermill(url: str, out, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / "00_preflight.ipynb"), str(out),
                           "--no-progress-bar", *args], cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("shown", [False, True], ids=["default", "show_personal_data"])
def test_papermill_alone_shows_emails_only_when_asked(app, seeded, tmp_path, shown):
    url = seeded(**DIRTY)
    users = emails(url)
    out = tmp_path / "preflight.ipynb"

    result = papermill(url, out, *(["-p", "show_personal_data", "True"] if shown else []))

    assert result.returncode != 0                          # the gate: the orphan and the ambiguous user
    cells = json.loads(out.read_text())["cells"]
    table = next(c for c in cells if "".join(c["source"]).startswith("unplaced = "))
    table_text = json.dumps(table["outputs"])
    gate = next(o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error")
    assert gate["ename"] == "AssertionError" and "Preflight gate" in gate["evalue"]
    for user in unplaceable(url):
        assert user in table_text and user in gate["evalue"]
        assert (users[user] in table_text) is shown and (f"{user} <{users[user]}>" in gate["evalue"]) is shown
    regular = [u for u in users if u not in unplaceable(url)]
    text = out.read_text() + result.stdout + result.stderr
    assert not any(users[u] in text for u in regular)      # only those it lists, and only when asked
    if not shown:
        assert "@example.com" not in text


SECRET = {"datahub": ("Connection", "accessToken"), "projects": ("Attachment", "storageKey")}   # app -> not to show


def test_a_refused_restore_does_not_print_the_row(app, seeded):
    """A CHECK left behind (40_enforce_not_null stopped between its steps) rejects a quarantined row
    that goes back: PostgreSQL's DETAIL would print every column of it (an access token, a file's
    storage key)."""
    table, secret = SECRET[app.name]
    url = seeded()
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "t", DDLLog())
        moved = quarantine.unplaced(conn, "t")                 # every row: none is placed yet
        assert moved["rows_moved"].sum() > 0
    query(url, 'ALTER TABLE {t} ADD CONSTRAINT left_behind CHECK ("workspaceId" IS NOT NULL) NOT VALID', t=table)
    tokens = [t for (t,) in query(url, "SELECT {c} FROM {q}.{t}", c=secret, q=app.quarantine, t=table)]
    assert tokens

    with db.connect(url) as conn, pytest.raises(GateFailed) as refused:
        quarantine.restore(conn)

    message = str(refused.value)
    assert "Restore refused, nothing was restored" in message and "left_behind" in message
    assert f"a row of {table}; its values are not shown" in message
    assert "Failing row" not in message and not any(t in message for t in tokens)
    assert all(n == 0 for (n,) in (query(url, "SELECT count(*) FROM {t}", t=t)[0] for t in app.tables))


PLACED_ROW = {"datahub": ("ChatMessage", "msg_1_1"), "projects": ("Project", "prj_1_1")}   # app -> a table, a row


def test_a_quarantine_table_made_after_not_null_takes_a_null_workspace(app, seeded):
    """A quarantine table created after 40_enforce_not_null (LIKE copies NOT NULL), then a rollback and
    a row the rule cannot place: the move used to fail, its error printing the row (a chat message,
    a project)."""
    table, row = PLACED_ROW[app.name]
    url = seeded()
    with db.connect(url) as conn:
        add_workspace_columns.apply(conn, RetryPolicy(), "t", DDLLog())
    query(url, """UPDATE {t} SET "workspaceId" = 'ws_1'""", t=table)
    query(url, """ALTER TABLE {t} ALTER COLUMN "workspaceId" SET NOT NULL""", t=table)
    with db.connect(url) as conn:
        quarantine.ensure_table(conn, table)                     # e.g. 40's sweep with on_orphan quarantine
    query(url, """ALTER TABLE {t} ALTER COLUMN "workspaceId" DROP NOT NULL""", t=table)   # the rollback
    query(url, """UPDATE {t} SET "workspaceId" = NULL WHERE id = %s""", [row], t=table)

    with db.connect(url) as conn:
        moved = quarantine.unplaced(conn, "t")

    assert dict(zip(moved["table"], moved["rows_moved"]))[table] == 1
    assert query(url, """SELECT id, "workspaceId" FROM {q}.{t}""", q=app.quarantine, t=table) == [(row, None)]


DETAILS = {   # app -> (a restore error's DETAIL, whether the message shows it), and the table it names
    "datahub": ("ChatMessage", [
        ('Key ("userId", provider)=(usr_00000001, stripe) already exists.', True),
        ('Key ("connectionId")=(conn_1_0) is not present in table "Connection".', True),
        ('Key (email)=(someone@example.com) already exists.', False),
        ('Key (lower(email))=(someone@example.com) already exists.', False),
        ("Failing row contains (msg_1, usr_00000001, user, Message 1, 2025-03-01, null).", False),
    ]),
    "projects": ("Label", [
        ('Key ("createdById", name)=(usr_00000001, bug) already exists.', True),
        ('Key ("commentId")=(cmt_1_1_1_1) is not present in table "Comment".', True),
        ('Key (email)=(someone@example.com) already exists.', False),
        ('Key (lower(email))=(someone@example.com) already exists.', False),
        ("Failing row contains (lbl_00000001_1, bug, #d3b374, usr_00000001, 2025-04-01, 2025-05-01, null).",
         False),
    ]),
}


@pytest.mark.parametrize("case", range(5))
def test_a_restore_error_shows_a_key_only_when_it_is_made_of_ids(app, case):
    table, details = DETAILS[app.name]
    detail, shown = details[case]
    diag = SimpleNamespace(message_detail=detail, table_name=table, column_name=None)
    assert (quarantine._detail(diag) == detail) is shown
    if not shown:
        assert quarantine._detail(diag) == f"a row of {table}; its values are not shown"
