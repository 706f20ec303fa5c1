"""The tenancy spec (src/tenancy_runbook/spec.py, docs/spec.md): both specs load with the facts the
runbook relies on, and a bad spec is refused with the line of the node at fault. No database."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import NamedTuple

import jsonschema
import pytest

from tenancy_runbook import spec
from tenancy_runbook.errors import RunbookError
from tenancy_runbook.paths import DEFAULT_SPEC, ROOT, SPEC_ENV

DATAHUB = ROOT / "runbooks" / "datahub.spec.yaml"
PROJECTS = ROOT / "tests" / "specs" / "projects.spec.yaml"

# A small valid spec for the bad cases: each case edits one place of it.
NOTES = """\
version: 1
name: notes
tenant:
  column: teamId
  type: text
  references: {table: Team, column: id}
  on_delete: CASCADE
user_rule:
  kind: default_else_owner
  users: {table: Account, default_tenant: homeTeamId}
  membership: {table: TeamMember, user: accountId, tenant: teamId, role: role, owner: OWNER}
tables:
  - name: Notebook
    from: user
    user: authorId
  - name: Note
    from: parent
    parent: {table: Notebook, column: notebookId}
  - name: Tag
    from: parent_else_user
    parent: {table: Note, column: noteId}
    user: creatorId
unique_keys:
  - table: Notebook
    columns: [teamId, title]
    winner:
      - {column: updatedAt, order: desc}
      - {column: id, order: asc}
indexes:
  - name: Notebook_teamId_title_key
    table: Notebook
    columns: [teamId, title]
    unique: true
  - name: Note_teamId_idx
    table: Note
    columns: [teamId]
migrations:
  add_column: migrations/20260101000000_add_team
  not_null: migrations/20260101000100_team_not_null
quarantine:
  schema: notes_quarantine
"""

FIRST_MIGRATION = """\
ALTER TABLE "Notebook" ADD COLUMN "teamId" TEXT;
ALTER TABLE "Note" ADD COLUMN "teamId" TEXT;
ALTER TABLE "Tag" ADD COLUMN "teamId" TEXT;
CREATE UNIQUE INDEX "Notebook_teamId_title_key" ON "Notebook"("teamId", "title");
CREATE INDEX "Note_teamId_idx" ON "Note"("teamId");
ALTER TABLE "Notebook" ADD CONSTRAINT "Notebook_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team"("id");
ALTER TABLE "Note" ADD CONSTRAINT "Note_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team"("id");
ALTER TABLE "Tag" ADD CONSTRAINT "Tag_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team"("id");
"""
SECOND_MIGRATION = "".join(f'ALTER TABLE "{t}" ALTER COLUMN "teamId" SET NOT NULL;\n'
                           for t in ("Notebook", "Note", "Tag"))
ADD_TEAM, TEAM_NOT_NULL = "20260101000000_add_team", "20260101000100_team_not_null"


def write_notes(tmp_path, text: str = NOTES, migrations: bool = True):
    """The notes spec (edited) in tmp_path, with its two migration folders unless told otherwise."""
    if migrations:
        for folder, sql in ((ADD_TEAM, FIRST_MIGRATION), (TEAM_NOT_NULL, SECOND_MIGRATION)):
            (tmp_path / "migrations" / folder).mkdir(parents=True, exist_ok=True)
            (tmp_path / "migrations" / folder / "migration.sql").write_text(sql)
    path = tmp_path / "notes.spec.yaml"
    path.write_text(text)
    return path


def edited(old: str, new: str, text: str = NOTES) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the one line of text that reads needle (leading and trailing blanks aside)."""
    (found,) = [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == needle]
    return found


def refused(path, check_files: bool = True) -> str:
    with pytest.raises(RunbookError) as info:
        spec.load(path, check_files=check_files)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# The two specs
# ---------------------------------------------------------------------------------------------

def test_the_datahub_spec_holds_todays_names():
    s = spec.load(DATAHUB)
    assert s.name == "datahub" and s.quarantine_schema == "datahub_quarantine"
    assert s.tenant == spec.TenantColumn("workspaceId", "text", "Workspace", "id", "CASCADE", "CASCADE")
    assert s.user_rule == spec.UserRule(
        kind="default_else_owner", users=spec.UserTable("User", "id", "defaultWorkspaceId"),
        membership=spec.Membership("WorkspaceMember", "userId", "workspaceId", "role", "OWNER"))
    assert s.table_names == ("Connection", "MetricDaily", "Insight", "ChatMessage")
    assert [t.derivation for t in s.tables] == ["user", "parent", "parent_else_user", "user"]
    assert s.table("Connection").user_column == "userId" and not s.table("Connection").uses_parent
    insight = s.table("Insight")
    assert (insight.parent_table, insight.parent_column) == ("Connection", "connectionId")
    assert insight.user_column == "userId"
    assert s.chain("MetricDaily") == [("MetricDaily", "connectionId", "Connection")]
    assert s.chain("MetricDaily")[0].parent == "Connection"
    assert s.chain("Connection") == [] and s.chain("ChatMessage") == []
    assert [t.name for t in s.children("Connection")] == ["MetricDaily", "Insight"]
    assert [t.foreign_key for t in s.tables] == [f"{t}_workspaceId_fkey" for t in s.table_names]


def test_the_datahub_unique_key_indexes_and_migrations():
    s = spec.load(DATAHUB)
    (key,) = s.unique_keys
    assert (key.table, key.columns, key.index) == ("Connection", ("workspaceId", "provider"),
                                                   "Connection_workspaceId_provider_key")
    assert key.winner == (spec.SortKey("updatedAt", "desc"), spec.SortKey("id", "asc"))
    assert key.winner[0].descending and not key.winner[1].descending
    assert [(i.name, i.table, i.columns, i.unique) for i in s.indexes] == [
        ("Connection_workspaceId_provider_key", "Connection", ("workspaceId", "provider"), True),
        ("MetricDaily_workspaceId_date_idx", "MetricDaily", ("workspaceId", "date"), False),
        ("Insight_workspaceId_idx", "Insight", ("workspaceId",), False),
        ("ChatMessage_workspaceId_createdAt_idx", "ChatMessage", ("workspaceId", "createdAt"), False)]
    assert s.migrations.add_column.name == "20251219170000_add_workspace_to_datahub_models"
    assert s.migrations.not_null.name == "20251219171000_datahub_workspace_not_null"
    assert s.migrations.add_column.sql == ROOT / "sql" / "migrations" / s.migrations.add_column.name / "migration.sql"
    assert s.migrations.not_null.sql.is_file()


def test_the_projects_spec_chains_two_levels():
    """The folder check is skipped only while tests/apps/projects/migrations is not there."""
    s = spec.load(PROJECTS, check_files=(ROOT / "tests" / "apps" / "projects" / "migrations").is_dir())
    assert s.table_names == ("Project", "Task", "Comment", "Attachment", "Label")
    assert s.chain("Comment") == [("Comment", "taskId", "Task"), ("Task", "projectId", "Project")]
    assert s.chain("Attachment") == [("Attachment", "commentId", "Comment")] + s.chain("Comment")
    attachment = s.table("Attachment")
    assert attachment.derivation == "parent_else_user" and attachment.user_column == "uploaderId"
    assert s.table("Project").user_column == "ownerId" and s.table("Label").user_column == "createdById"
    (key,) = s.unique_keys
    assert (key.table, key.columns, key.index) == ("Label", ("workspaceId", "name"), "Label_workspaceId_name_key")
    migrations = ROOT / "tests" / "apps" / "projects" / "migrations"
    assert s.migrations.add_column.path == migrations / "20260112090000_add_workspace_to_projects_models"
    assert s.migrations.not_null.path == migrations / "20260112091000_projects_workspace_not_null"
    assert s.quarantine_schema == "projects_quarantine"


def test_the_schema_is_draft_2020_12_and_every_property_is_described():
    document = json.loads(spec.SCHEMA_PATH.read_text())
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)

    def undescribed(node, where):
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                if "description" not in prop and "$ref" not in prop:
                    yield f"{where}.{name}"
            for key, value in node.items():
                if key != "if":           # an if's properties only select a branch
                    yield from undescribed(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from undescribed(value, f"{where}[{i}]")
    assert list(undescribed(document, "")) == []


def test_a_spec_is_frozen_and_knows_its_tables(tmp_path):
    s = spec.load(write_notes(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"
    assert s.user_rule.users.key == "id" and s.tables[0].key == "id"        # the defaults
    assert s.tenant.on_update == "CASCADE" and s.indexes[1].unique is False
    assert s.chain("Tag") == [("Tag", "noteId", "Note"), ("Note", "notebookId", "Notebook")]
    with pytest.raises(RunbookError, match=r"no table 'Notes' in the tenancy spec .*: it declares Notebook, Note, Tag"):
        s.table("Notes")


def test_a_rule_as_sql(tmp_path):
    text = edited("""  kind: default_else_owner
  users: {table: Account, default_tenant: homeTeamId}
  membership: {table: TeamMember, user: accountId, tenant: teamId, role: role, owner: OWNER}
""", "  kind: sql\n  sql: rules/account_team.sql\n")
    path = write_notes(tmp_path, text)
    message = refused(path)
    assert f"line {line_of(text, 'sql: rules/account_team.sql')} (user_rule.sql): the rule's SQL file" in message
    assert "does not exist: give its path relative to the spec file" in message
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "account_team.sql").write_text(
        'SELECT "id" AS user_id, "homeTeamId" AS tenant_id FROM "Account"')
    rule = spec.load(path).user_rule
    assert rule == spec.UserRule(kind="sql", sql=tmp_path / "rules" / "account_team.sql")


# ---------------------------------------------------------------------------------------------
# Bad specs: the line of the node at fault, what is wrong, what to do
# ---------------------------------------------------------------------------------------------

class Bad(NamedTuple):
    """One edit of the notes spec, the line the message must name (the text it reads), and what it says."""
    old: str
    new: str
    line_reads: str
    says: str


NOTEBOOK = "  - name: Notebook\n    from: user\n    user: authorId\n"
NOTE = "  - name: Note\n    from: parent\n    parent: {table: Notebook, column: notebookId}\n"
BAD = {
    "a missing key": Bad(
        "    from: user\n    user: authorId\n", "    from: user\n", "- name: Notebook",
        "(tables[0]): missing key 'user': add it (from: user takes user"),
    "a wrong derivation kind": Bad(
        "    from: parent\n", "    from: parents\n", "from: parents",
        "(tables[1].from): 'parents' is not allowed: write one of user, parent, parent_else_user"),
    "a child before its parent": Bad(
        NOTEBOOK + NOTE, NOTE + NOTEBOOK, "parent: {table: Notebook, column: notebookId}",
        "(tables[0].parent.table): table 'Note' is listed before its parent 'Notebook' (tables[1]): "
        "move 'Notebook' above 'Note'"),
    "an unknown parent": Bad(
        "parent: {table: Note, column: noteId}", "parent: {table: Nope, column: noteId}",
        "parent: {table: Nope, column: noteId}",
        "(tables[2].parent.table): parent table 'Nope' of 'Tag' is not declared in tables"),
    "a table its own parent": Bad(
        "parent: {table: Note, column: noteId}", "parent: {table: Tag, column: noteId}",
        "parent: {table: Tag, column: noteId}",
        "(tables[2].parent.table): table 'Tag' names itself as its parent"),
    "a table named twice": Bad(
        "  - name: Tag\n", "  - name: Notebook   # again\n", "- name: Notebook   # again",
        "(tables[2].name): table 'Notebook' is declared twice (also tables[0]): declare each table once"),
    "the user table migrated": Bad(
        "  - name: Tag\n", "  - name: Account\n", "- name: Account",
        "(tables[2].name): 'Account' is the user table (user_rule.users): it cannot be migrated too"),
    "the tenant column as a user column": Bad(
        "    user: creatorId\n", "    user: teamId\n", "- name: Tag",
        "(tables[2]): table 'Tag': its user is the tenant column 'teamId', which the migration adds"),
    "a user column on from: parent": Bad(
        NOTE, NOTE + "    user: writerId\n", "user: writerId",
        "(tables[1].user): key 'user' is not allowed here: from: parent takes no user column"),
    "an unknown table in a unique key": Bad(
        "  - table: Notebook\n", "  - table: Notebooks\n", "- table: Notebooks",
        "(unique_keys[0].table): unique key on table 'Notebooks', which is not declared in tables: "
        "declare it there, or correct the name"),
    "a winner without the key": Bad(
        "      - {column: id, order: asc}\n", "", "winner:",
        "(unique_keys[0].winner): the winner order does not include Notebook's key 'id': "
        "end it with {column: id, order: asc}"),
    "a key without the tenant column": Bad(
        "    columns: [teamId, title]\n    winner:", "    columns: [title]\n    winner:", "columns: [title]",
        "(unique_keys[0].columns): the key's columns do not include the tenant column 'teamId'"),
    "a unique key without its index": Bad(
        "    unique: true\n", "", "- table: Notebook",
        "(unique_keys[0]): no unique index on Notebook (teamId, title) under indexes: "
        "declare the unique index migration 1 creates for this key (unique: true)"),
    "a unique index without its key": Bad(
        "    columns: [teamId]\n", "    columns: [teamId]\n    unique: true\n", "- name: Note_teamId_idx",
        "(indexes[1]): unique index 'Note_teamId_idx' has no entry in unique_keys"),
    "an unknown table in an index": Bad(
        "    table: Note\n", "    table: Notes\n", "table: Notes",
        "(indexes[1].table): index 'Note_teamId_idx' is on table 'Notes', which is not declared in tables"),
    "an unknown key": Bad(
        "  schema: notes_quarantine\n", "  schema: notes_quarantine\n  shema: x\n", "shema: x",
        "(quarantine.shema): unknown key 'shema': remove it or correct its spelling (allowed here: schema)"),
    "a key given twice": Bad(
        "  on_delete: CASCADE\n", "  on_delete: CASCADE\n  column: tenantId\n", "column: tenantId",
        ": key 'column' is given twice in one mapping (also on line 4): keep one of them"),
    "a SET NULL tenant": Bad(
        "  on_delete: CASCADE\n", "  on_delete: SET NULL\n", "on_delete: SET NULL",
        "(tenant.on_delete): 'SET NULL' is not allowed: write one of CASCADE, RESTRICT, NO ACTION"),
    "a tenant column of the wrong type": Bad(
        "  type: text\n", "  type: TEXT\n", "type: TEXT",
        "(tenant.type): 'TEXT' is not allowed here: write its SQL type, lower case"),
    "a uuid tenant, not handled yet": Bad(
        "  type: text\n", "  type: uuid\n", "type: uuid",
        "(tenant.type): 'uuid' is not allowed here: write its SQL type, lower case: text or varchar(N), "
        "the type of the referenced key (Prisma's String ids are text; uuid and integer keys are not "
        "handled yet: docs/spec.md, Limits today)"),
    "the migrations out of order": Bad(
        "20260101000100_team_not_null", "20251231000000_team_not_null",
        "not_null: migrations/20251231000000_team_not_null",
        "(migrations.not_null): migration '20251231000000_team_not_null' does not sort after "
        "'20260101000000_add_team'"),
    "a wrong version": Bad("version: 1\n", "version: 2\n", "version: 2", "(version): 2 is not allowed: write 1"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_spec_is_refused_at_its_line(tmp_path, case):
    old, new, on_line, says = BAD[case]
    text = edited(old, new)
    path = write_notes(tmp_path, text)
    message = refused(path)
    assert message.startswith(f"tenancy spec {path}: 1 problem, nothing was loaded (the format: docs/spec.md)\n")
    separator = "" if says.startswith(":") else " "          # a problem of no particular key has no (where)
    assert f"{path}, line {line_of(text, on_line)}{separator}{says}" in message


def test_every_problem_is_listed_in_file_order(tmp_path):
    text = edited("    from: parent\n", "    from: parents\n",
                  edited("  schema: notes_quarantine\n", "  schema: Notes-Quarantine\n"))
    message = refused(write_notes(tmp_path, text))
    assert "2 problems" in message.splitlines()[0]
    first, second = message.splitlines()[1:]
    assert f"line {line_of(text, 'from: parents')} (tables[1].from)" in first
    assert f"line {line_of(text, 'schema: Notes-Quarantine')} (quarantine.schema)" in second


def test_the_files_are_checked_unless_told_not_to(tmp_path):
    path = write_notes(tmp_path, migrations=False)
    message = refused(path)
    assert f"line {line_of(NOTES, f'add_column: migrations/{ADD_TEAM}')} (migrations.add_column): migration folder " \
        in message
    assert f"{tmp_path}/migrations/20260101000000_add_team does not exist: give the Prisma migration folder" in message
    assert "(migrations.not_null)" in message
    assert spec.load(path, check_files=False).migrations.add_column.path == tmp_path / "migrations" / ADD_TEAM


def test_migration_1_must_name_each_index_and_foreign_key(tmp_path):
    path = write_notes(tmp_path, edited("Note_teamId_idx", "Note_team_idx"))
    migration = tmp_path / "migrations" / "20260101000000_add_team" / "migration.sql"
    migration.write_text(FIRST_MIGRATION.replace('"Tag_teamId_fkey"', '"Tag_team_fkey"'))
    message = refused(path)
    text = path.read_text()
    assert (f"line {line_of(text, '- name: Note_team_idx')} (indexes[1].name): index 'Note_team_idx' is not in "
            f"migration migrations/{ADD_TEAM}") in message
    assert (f"line {line_of(text, '- name: Tag')} (tables[2].name): foreign key 'Tag_teamId_fkey' is not in migration "
            "migrations/20260101000000_add_team: write the name its ADD CONSTRAINT gives under foreign_key") in message
    fixed = edited("    user: creatorId\n", "    user: creatorId\n    foreign_key: Tag_team_fkey\n", text)
    path.write_text(fixed)
    migration.write_text(FIRST_MIGRATION.replace('"Tag_teamId_fkey"', '"Tag_team_fkey"')
                         .replace("Note_teamId_idx", "Note_team_idx"))
    assert spec.load(path).table("Tag").foreign_key == "Tag_team_fkey"


def test_not_yaml_or_not_a_spec(tmp_path):
    path = tmp_path / "bad.spec.yaml"
    path.write_text("version: 1\nname: [notes\n")
    assert refused(path).startswith(f"{path}, line 3: not valid YAML: ")
    path.write_text("")
    assert refused(path) == f"{path}: the tenancy spec is empty. Write one (docs/spec.md)."
    path.write_text("- just\n- a list\n")
    assert f"{path}, line 1: ['just', 'a list'] is a list, not a mapping (key: value lines)" in refused(path)
    assert "cannot read the tenancy spec" in refused(tmp_path / "absent.spec.yaml")


def test_the_examples_in_docs_load(tmp_path):
    """docs/spec.md's first look is a valid spec, and its annotated example is the Data Hub spec."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "spec.md").read_text(), re.S)
    first = tmp_path / "first.spec.yaml"
    first.write_text(blocks[0])
    assert spec.load(first, check_files=False).table_names == ("Notebook",)
    (annotated,) = [b for b in blocks if b.startswith("version: 1 ")]
    beside = ROOT / "runbooks" / "datahub.spec.yaml"
    copy = tmp_path / "runbooks" / "datahub.spec.yaml"
    copy.parent.mkdir()
    copy.write_text(annotated.replace("../sql/", f"{ROOT}/sql/"))
    loaded, datahub = spec.load(copy), spec.load(beside)
    assert dataclasses.replace(loaded, path=datahub.path, sha256=datahub.sha256) == datahub


def test_active_is_the_spec_the_runner_names_else_the_datahub_spec(monkeypatch, tmp_path):
    monkeypatch.delenv(SPEC_ENV, raising=False)
    assert spec.active().path == DEFAULT_SPEC.resolve()
    monkeypatch.setenv(SPEC_ENV, str(tmp_path / "gone.spec.yaml"))
    with pytest.raises(RunbookError, match=f"gone.spec.yaml cannot be read .{SPEC_ENV} names it."):
        spec.active()


def test_a_stage_names_the_runbook_of_its_own_spec(tmp_path):
    """What a stage tells the operator to run next is the runbook beside the spec of the run that
    names it and runs that stage: Data Hub's, the projects app's, or a clear placeholder."""
    from tenancy_runbook import runbook
    projects = spec.load(ROOT / "tests" / "specs" / "projects.spec.yaml")
    datahub = spec.load(DEFAULT_SPEC)
    assert runbook.command("60_remove_guard", datahub) == "tenancy-runbook run runbooks/finish.yaml"
    assert runbook.command("20_backfill", datahub) == "tenancy-runbook run runbooks/datahub-tenancy.yaml"
    assert runbook.command("90_rollback", datahub) == "tenancy-runbook run runbooks/rollback.yaml"
    assert runbook.command("60_remove_guard", projects) == "tenancy-runbook run tests/specs/projects-finish.yaml"
    assert runbook.command("20_backfill", projects) == "tenancy-runbook run tests/specs/projects-tenancy.yaml"
    # a spec with no runbook beside it: the words say what to run, naming the spec's file
    alone = tmp_path / "alone.spec.yaml"
    alone.write_text((ROOT / "tests" / "specs" / "projects.spec.yaml").read_text().replace(
        "../apps/projects/", str(ROOT / "tests" / "apps" / "projects") + "/"))
    (tmp_path / "other.yaml").write_text("name: other\nspec: other.spec.yaml\nstages:\n  - notebook: 20_backfill\n")
    assert runbook.command("20_backfill", spec.load(alone)) == \
        "tenancy-runbook run <a runbook with 'spec: alone.spec.yaml' and the stage 20_backfill>"
