"""The tenancy spec: a tenancy migration declared as data, in YAML (format: docs/spec.md).

    spec = load("notes.spec.yaml")        # docs/spec.md's "notes" app (tests/test_spec.py)
    spec.tenant.name                       # 'teamId'
    [t.name for t in spec.tables]          # the backfill order: ['Notebook', 'Note', 'Tag']
    spec.chain("Note")                     # [Hop('Note', 'notebookId', 'Notebook')]

:func:`load` reads the file, checks it against ``spec.schema.json`` (JSON Schema, draft 2020-12),
then checks what a schema cannot (a parent listed before its child, a unique key with its unique
index, the migration folders and their names), and returns frozen dataclasses. Every problem is a
:class:`~tenancy_runbook.errors.RunbookError` naming the file and the line of the YAML node at
fault, what is wrong and what to do. Names are only data here: no SQL is built in this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import jsonschema
import yaml

from .errors import RunbookError
from .paths import DEFAULT_SPEC, SPEC_ENV

SCHEMA_PATH = Path(__file__).with_name("spec.schema.json")
DOCS = "docs/spec.md"
DERIVATIONS = ("user", "parent", "parent_else_user")
MAX_NAME = 63          # PostgreSQL truncates longer names (NAMEDATALEN - 1)


# ---------------------------------------------------------------------------------------------
# What a spec declares
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TenantColumn:
    """The column every migrated table gains, and its foreign key to the tenant table."""
    name: str                  # teamId
    type: str                  # text
    table: str                 # the referenced (tenant) table: Team
    key: str                   # its key column: id
    on_delete: str             # CASCADE | RESTRICT | NO ACTION
    on_update: str = "CASCADE"


@dataclass(frozen=True)
class UserTable:
    """The user table of a ``default_else_owner`` rule."""
    table: str                 # Account
    key: str                   # id
    default_tenant: str        # homeTeamId (nullable)


@dataclass(frozen=True)
class Membership:
    """The membership table of a ``default_else_owner`` rule."""
    table: str                 # TeamMember
    user: str                  # accountId
    tenant: str                # teamId
    role: str                  # role
    owner: str                 # OWNER: the role value of an owner


@dataclass(frozen=True)
class UserRule:
    """How a user's tenant is found.

    ``default_else_owner``: the user's default tenant when set, else the one tenant the user
    owns; no answer (None) for a user with neither, or with no default and several owned.
    ``sql``: the file ``sql`` selects (user_id, tenant_id), at most one row per user.
    """
    kind: str                           # default_else_owner | sql
    users: UserTable | None = None
    membership: Membership | None = None
    sql: Path | None = None             # absolute


@dataclass(frozen=True)
class Table:
    """A table that gains the tenant column, and where each row's value comes from.

    ``derivation``: ``user`` (the tenant of the user in ``user_column``), ``parent`` (the
    tenant of the parent row ``parent_column`` points at, in ``parent_table``) or
    ``parent_else_user`` (the parent's when ``parent_column`` is set, else the user's).
    """
    name: str
    derivation: str
    key: str = "id"                     # the primary-key column
    user_column: str | None = None
    parent_table: str | None = None
    parent_column: str | None = None
    foreign_key: str = ""               # the tenant column's foreign key constraint

    @property
    def uses_user(self) -> bool:
        """Whether some row may take its user's tenant (user, parent_else_user)."""
        return self.user_column is not None

    @property
    def uses_parent(self) -> bool:
        """Whether some row may take its parent's tenant (parent, parent_else_user)."""
        return self.parent_table is not None


class Hop(NamedTuple):
    """One step up a chain of parents: ``child.column`` references ``parent``'s key."""
    child: str
    column: str
    parent: str


@dataclass(frozen=True)
class SortKey:
    """One term of a winner's ORDER BY."""
    column: str
    order: str                          # asc | desc

    @property
    def descending(self) -> bool:
        return self.order == "desc"


@dataclass(frozen=True)
class UniqueKey:
    """A unique key that becomes tenant-scoped; in a collision the first row by ``winner`` stays."""
    table: str
    columns: tuple[str, ...]
    winner: tuple[SortKey, ...]
    index: str                          # the name of its unique index (from indexes)


@dataclass(frozen=True)
class Index:
    """An index migration 1 creates."""
    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class Migration:
    """A Prisma migration folder (``<timestamp>_<name>/migration.sql``)."""
    name: str                           # the folder's name: 20260101000000_add_team
    path: Path                          # the folder, absolute

    @property
    def sql(self) -> Path:
        return self.path / "migration.sql"


@dataclass(frozen=True)
class Migrations:
    add_column: Migration               # migration 1: the nullable column, its foreign keys, the indexes
    not_null: Migration                 # migration 2: SET NOT NULL


@dataclass(frozen=True)
class Spec:
    """A whole tenancy spec, as :func:`load` read it."""
    path: Path
    sha256: str                         # of the file's bytes
    name: str
    description: str
    tenant: TenantColumn
    user_rule: UserRule
    tables: tuple[Table, ...]           # in backfill order: a parent before its children
    unique_keys: tuple[UniqueKey, ...]
    indexes: tuple[Index, ...]
    migrations: Migrations
    quarantine_schema: str
    title: str = ""                     # the app's name for messages ("Data Hub"); load() defaults it to name

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    def table(self, name: str) -> Table:
        """The declared table ``name``; a RunbookError naming the declared ones otherwise."""
        for table in self.tables:
            if table.name == name:
                return table
        raise RunbookError(f"no table {name!r} in the tenancy spec {self.path}: it declares "
                           f"{', '.join(self.table_names)}. Use one of them, or declare it under tables.")

    def chain(self, name: str) -> list[Hop]:
        """The hops from table ``name`` up its parents to the table whose rows take their user's
        tenant (``from: user``); empty for such a table. A ``parent_else_user`` table on the way
        is passed through by its parent column (the hop that applies while that column is set)."""
        hops = []
        table = self.table(name)
        while table.parent_table is not None:
            hops.append(Hop(table.name, table.parent_column, table.parent_table))
            table = self.table(table.parent_table)
        return hops

    def children(self, name: str) -> tuple[Table, ...]:
        """The tables whose parent is ``name``, in backfill order."""
        self.table(name)
        return tuple(t for t in self.tables if t.parent_table == name)

    def rule_identifiers(self) -> dict[str, str]:
        """The names a ``default_else_owner`` rule's SQL is filled with (sql/common/user_workspace.sql):
        users, user_key, default_tenant, members, member_user, member_tenant, member_role. The owner
        role's value is data, bound as ``%(owner)s`` (``user_rule.membership.owner``)."""
        users, members = self.user_rule.users, self.user_rule.membership
        if users is None or members is None:
            raise RunbookError(f"the tenancy spec {self.path} has a user_rule of kind {self.user_rule.kind!r}, "
                               "which names no user or membership table: its SQL is its own file "
                               f"(user_rule.sql, {self.user_rule.sql}); placement.rule_set() gives either "
                               "kind's rule as a set.")
        return {"users": users.table, "user_key": users.key, "default_tenant": users.default_tenant,
                "members": members.table, "member_user": members.user, "member_tenant": members.tenant,
                "member_role": members.role}


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

class Problem(NamedTuple):
    """Something wrong in a spec: where (a path of keys and list positions), and what to do."""
    path: tuple
    message: str
    line: int | None = None             # when known already (a duplicate key)


def active() -> Spec:
    """The spec of this run: the one the runner names (paths.SPEC_ENV, its runbook's ``spec:``),
    else paths.DEFAULT_SPEC (a notebook run on its own). Read once per file and content."""
    given = os.environ.get(SPEC_ENV, "").strip()
    path = Path(given) if given else DEFAULT_SPEC
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        raise RunbookError(f"the tenancy spec {path} cannot be read"
                           + (f" ({SPEC_ENV} names it)" if given else "")
                           + ": the checkout is incomplete, or the runbook's 'spec:' is wrong.") from None
    return _load_once(str(path.resolve()), stamp)


@contextmanager
def using(s: "Spec | None"):
    """Within it, :func:`active` is ``s`` (None: unchanged), as under the runner (paths.SPEC_ENV)."""
    if s is None:
        yield
        return
    saved = os.environ.get(SPEC_ENV)
    os.environ[SPEC_ENV] = str(s.path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(SPEC_ENV, None)
        else:
            os.environ[SPEC_ENV] = saved


@lru_cache(maxsize=4)
def _load_once(path: str, stamp: int) -> Spec:
    return load(path)


def load(path: str | Path, check_files: bool = True) -> Spec:
    """Read, check and return the spec at ``path``.

    ``check_files``: also check that the Prisma migration folders (and a ``sql`` rule's file)
    exist, and that migration 1 names every declared index and foreign key. Nothing is read
    from a database. Raises RunbookError listing every problem found, each with its line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RunbookError(f"cannot read the tenancy spec {path}: {exc.strerror}. "
                           f"Give the path of a spec file ({DOCS}).") from None
    node, doc = _parse(path, raw)
    problems = (_duplicate_keys(node) or _schema_problems(doc)
                or _semantic_problems(doc, path.parent, check_files))
    if problems:
        raise RunbookError(_report(path, node, problems))
    return _build(path, raw, doc)


def _parse(path: Path, raw: bytes):
    """The YAML node tree (for lines) and the document it makes."""
    try:
        loader = yaml.SafeLoader(raw.decode("utf-8"))
        try:
            node = loader.get_single_node()
            doc = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except UnicodeDecodeError as exc:
        raise RunbookError(f"{path}: the tenancy spec is not UTF-8 text ({exc.reason} at byte {exc.start}). "
                           "Save it as UTF-8.") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark else ""
        raise RunbookError(f"{path}{line}: not valid YAML: {exc.problem or exc.context}. "
                           "Correct the YAML there.") from None
    except yaml.YAMLError as exc:
        raise RunbookError(f"{path}: not valid YAML: {exc}. Correct the YAML.") from None
    if node is None:
        raise RunbookError(f"{path}: the tenancy spec is empty. Write one ({DOCS}).")
    return node, doc


def _duplicate_keys(node) -> list[Problem]:
    """Keys given twice in one mapping (YAML would silently keep the last)."""
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key, value in node.value:
            name = key.value
            if name in seen:
                problems.append(Problem((), f"key '{name}' is given twice in one mapping (also on line "
                                            f"{seen[name]}): keep one of them", key.start_mark.line + 1))
            seen.setdefault(name, key.start_mark.line + 1)
            problems += _duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item)
    return problems


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of the format (spec.schema.json)."""
    return json.loads(SCHEMA_PATH.read_text())


def _schema_problems(doc) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(schema())
    return [problem for error in validator.iter_errors(doc) for problem in _describe(error)]


# ---------------------------------------------------------------------------------------------
# JSON Schema errors, said plainly
# ---------------------------------------------------------------------------------------------

def _describe(error: jsonschema.ValidationError) -> list[Problem]:
    """One error of the schema as problems a person can act on."""
    path, value = tuple(error.absolute_path), error.instance
    sub = error.schema if isinstance(error.schema, dict) else {}
    hint = sub.get("description", "")
    kind = error.validator
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        return [Problem(path, f"missing key '{key}': add it" + _parens(_key_hint(sub, key) or hint)) for key in missing]
    if kind == "additionalProperties":
        allowed = ", ".join(sub.get("properties", {}))
        return [Problem(path + (key,), f"unknown key '{key}': remove it or correct its spelling "
                                       f"(allowed here: {allowed})")
                for key in value if key not in sub.get("properties", {})]
    if kind == "not" and path:
        return [Problem(path, f"key '{path[-1]}' is not allowed here: {hint}")]
    if kind == "enum":
        return [Problem(path, f"{value!r} is not allowed: write one of {', '.join(map(str, error.validator_value))}"
                              + _parens(hint))]
    if kind == "const":
        return [Problem(path, f"{value!r} is not allowed: write {error.validator_value!r}" + _parens(hint))]
    if kind == "type":
        expected = _kind_name(error.validator_value)
        return [Problem(path, f"{_show(value)} is {_kind(value)}, not {expected}: write {expected}" + _parens(hint))]
    if kind in ("pattern", "maxLength", "minLength"):
        return [Problem(path, f"{value!r} is not allowed here: write {hint}")]
    if kind == "minItems":
        return [Problem(path, "the list is empty: list at least one" + _parens(hint))]
    if kind == "uniqueItems":
        return [Problem(path, "the list names a value twice: list each once")]
    return [Problem(path, error.message + _parens(hint))]


def _parens(hint: str) -> str:
    return f" ({hint})" if hint else ""


def _key_hint(sub: dict, key: str) -> str:
    """The description of property ``key`` of a schema (through a ``$ref``)."""
    prop = sub.get("properties", {}).get(key, {})
    if "description" not in prop and "$ref" in prop:
        prop = schema()["$defs"].get(prop["$ref"].rsplit("/", 1)[-1], {})
    return prop.get("description", "")


_KINDS = {"object": "a mapping (key: value lines)", "array": "a list", "string": "text",
          "boolean": "true or false", "integer": "a whole number", "number": "a number", "null": "nothing"}


def _kind_name(expected) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(_KINDS.get(n, n) for n in names)


def _kind(value) -> str:
    """What YAML made of a value, in the schema's words."""
    for name, types in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float),
                        ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, types):
            return _KINDS[name]
    return f"a {type(value).__name__}"


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------
# What the schema cannot check
# ---------------------------------------------------------------------------------------------

def _semantic_problems(doc: dict, base: Path, check_files: bool) -> list[Problem]:
    problems = (_table_problems(doc) + _unique_key_problems(doc) + _index_problems(doc)
                + _migration_order_problems(doc))
    if not problems:            # each unique key with its index: said only when both look right alone
        problems = _pairing_problems(doc)
    if check_files and not problems:
        problems = _file_problems(doc, base)
    return problems


def _positions(doc: dict) -> dict[str, int]:
    """Each declared table's first position in tables."""
    positions: dict[str, int] = {}
    for i, table in enumerate(doc["tables"]):
        positions.setdefault(table["name"], i)
    return positions


def _table_problems(doc: dict) -> list[Problem]:
    """Each table once, none of the rule's own tables, parents first, the tenant column left alone."""
    tenant, positions = doc["tenant"]["column"], _positions(doc)
    reserved = _rule_tables(doc)
    problems = []
    for i, table in enumerate(doc["tables"]):
        name, here = table["name"], ("tables", i)
        if positions[name] != i:
            problems.append(Problem(here + ("name",), f"table '{name}' is declared twice (also "
                                                      f"tables[{positions[name]}]): declare each table once"))
        if name in reserved:
            problems.append(Problem(here + ("name",), f"'{name}' is {reserved[name]}: it cannot be migrated too; "
                                                      "remove it from tables"))
        problems += _tenant_column_problems(table, here, tenant)
        if "parent" in table:
            problems += _parent_problems(table, here, positions)
        fk = _foreign_key(table, tenant)
        if len(fk.encode()) > MAX_NAME:
            problems.append(Problem(here + ("name",), f"the foreign key name '{fk}' is longer than {MAX_NAME} "
                                                      "bytes, which PostgreSQL truncates: write the name Prisma "
                                                      "created under foreign_key"))
    return problems


def _tenant_column_problems(table: dict, here: tuple, tenant: str) -> list[Problem]:
    """No column the table already has (key, user, parent column) may be the one the migration adds."""
    columns = (("key", table.get("key", "id")), ("user", table.get("user")),
               ("foreign key column", table.get("parent", {}).get("column")))
    return [Problem(here, f"table '{table['name']}': its {what} is the tenant column '{tenant}', which the "
                          "migration adds: name the existing column instead")
            for what, column in columns if column == tenant]


def _foreign_key(table: dict, tenant: str) -> str:
    """The name of a table's tenant foreign key: given, or Prisma's <table>_<column>_fkey."""
    return table.get("foreign_key") or f"{table['name']}_{tenant}_fkey"


def _rule_tables(doc: dict) -> dict[str, str]:
    """The tables the user rule and the tenant column use, with what each is."""
    rule = doc["user_rule"]
    found = {doc["tenant"]["references"]["table"]: "the tenant table (tenant.references)"}
    if "users" in rule:
        found[rule["users"]["table"]] = "the user table (user_rule.users)"
    if "membership" in rule:
        found[rule["membership"]["table"]] = "the membership table (user_rule.membership)"
    return found


def _parent_problems(table: dict, here: tuple, positions: dict[str, int]) -> list[Problem]:
    """The parent is another declared table, listed before this one."""
    name, parent = table["name"], table["parent"]["table"]
    where = here + ("parent", "table")
    if parent == name:
        return [Problem(where, f"table '{name}' names itself as its parent: a row cannot take its tenant from "
                               "its own table; give it from: user (its user column) instead")]
    if parent not in positions:
        return [Problem(where, f"parent table '{parent}' of '{name}' is not declared in tables: declare it "
                               f"above '{name}' (a parent gets its tenant first), or correct the name")]
    if positions[parent] > here[1]:
        return [Problem(where, f"table '{name}' is listed before its parent '{parent}' (tables[{positions[parent]}]):"
                               f" move '{parent}' above '{name}'; tables are backfilled in the order listed")]
    return []


def _unique_key_problems(doc: dict) -> list[Problem]:
    """Each unique key: a declared table, the tenant column among its columns, a total winner order."""
    tenant, positions = doc["tenant"]["column"], _positions(doc)
    problems, seen = [], set()
    for i, key in enumerate(doc.get("unique_keys", [])):
        here, table, columns = ("unique_keys", i), key["table"], tuple(key["columns"])
        if table not in positions:
            problems.append(Problem(here + ("table",), f"unique key on table '{table}', which is not declared in "
                                                       "tables: declare it there, or correct the name"))
            continue
        if (table, columns) in seen:
            problems.append(Problem(here, f"unique key {table} ({', '.join(columns)}) is declared twice: keep one"))
        seen.add((table, columns))
        if tenant not in columns:
            problems.append(Problem(here + ("columns",), f"the key's columns do not include the tenant column "
                                                         f"'{tenant}': a tenant-scoped key has it, e.g. "
                                                         f"[{tenant}, {columns[-1]}]"))
        problems += _winner_problems(key, here, doc["tables"][positions[table]].get("key", "id"))
    return problems


def _winner_problems(key: dict, here: tuple, table_key: str) -> list[Problem]:
    """A winner order names each column once and includes the table's key (a total order)."""
    columns = [s["column"] for s in key["winner"]]
    problems = [Problem(here + ("winner", j, "column"), f"the winner order names '{c}' twice: name it once")
                for j, c in enumerate(columns) if c in columns[:j]]
    if table_key not in columns:
        problems.append(Problem(here + ("winner",), f"the winner order does not include {key['table']}'s key "
                                                    f"'{table_key}': end it with {{column: {table_key}, order: asc}}"
                                                    " so that a tie is broken the same way every run"))
    return problems


def _index_problems(doc: dict) -> list[Problem]:
    """Each index: a unique name, a declared table."""
    positions, names = _positions(doc), {}
    problems = []
    for i, index in enumerate(doc["indexes"]):
        here, name, table = ("indexes", i), index["name"], index["table"]
        if name in names:
            problems.append(Problem(here + ("name",), f"index name '{name}' is declared twice (also indexes"
                                                      f"[{names[name]}]): give each index its own name"))
        names.setdefault(name, i)
        if table not in positions:
            problems.append(Problem(here + ("table",), f"index '{name}' is on table '{table}', which is not "
                                                       "declared in tables: declare it there, or correct the name"))
    return problems


def _pairing_problems(doc: dict) -> list[Problem]:
    """Each unique key has its unique index under indexes, and each unique index its unique key."""
    keys = {(k["table"], tuple(k["columns"])) for k in doc.get("unique_keys", [])}
    unique_indexes = {(i["table"], tuple(i["columns"])) for i in doc["indexes"] if i.get("unique")}
    problems = []
    for i, key in enumerate(doc.get("unique_keys", [])):
        if (key["table"], tuple(key["columns"])) not in unique_indexes:
            problems.append(Problem(("unique_keys", i), f"no unique index on {key['table']} "
                                                        f"({', '.join(key['columns'])}) under indexes: declare the "
                                                        "unique index migration 1 creates for this key (unique: true)"))
    for i, index in enumerate(doc["indexes"]):
        if index.get("unique") and (index["table"], tuple(index["columns"])) not in keys:
            problems.append(Problem(("indexes", i), f"unique index '{index['name']}' has no entry in unique_keys: add "
                                                    f"one for {index['table']} ({', '.join(index['columns'])}) "
                                                    "saying which row wins a collision"))
    return problems


def _migration_order_problems(doc: dict) -> list[Problem]:
    """Prisma applies migrations in name order: migration 1 sorts first."""
    first, second = (Path(doc["migrations"][k].rstrip("/")).name for k in ("add_column", "not_null"))
    if first >= second:
        return [Problem(("migrations", "not_null"), f"migration '{second}' does not sort after '{first}': Prisma "
                                                    "applies migrations in name order; not_null must be the later one")]
    return []


def _file_problems(doc: dict, base: Path) -> list[Problem]:
    """The migration folders (and a rule's SQL file) exist; migration 1 names each declared index
    and foreign key, migration 2 each table."""
    problems = []
    for which in ("add_column", "not_null"):
        folder = base / doc["migrations"][which]
        if not (folder / "migration.sql").is_file():
            what = "has no migration.sql" if folder.is_dir() else "does not exist"
            problems.append(Problem(("migrations", which), f"migration folder {folder.resolve()} {what}: give the "
                                                           "Prisma migration folder, relative to the spec file"))
    rule_sql = doc["user_rule"].get("sql")
    if rule_sql and not (base / rule_sql).is_file():
        problems.append(Problem(("user_rule", "sql"), f"the rule's SQL file {(base / rule_sql).resolve()} does not "
                                                      "exist: give its path relative to the spec file"))
    if problems:
        return problems
    return _named_in_migrations(doc, base)


def _named_in_migrations(doc: dict, base: Path) -> list[Problem]:
    """Each index and foreign key name in migration 1's SQL, each table in migration 2's."""
    tenant = doc["tenant"]["column"]
    first = (base / doc["migrations"]["add_column"] / "migration.sql").read_text()
    second = (base / doc["migrations"]["not_null"] / "migration.sql").read_text()
    problems = []
    for i, index in enumerate(doc["indexes"]):
        if f'"{index["name"]}"' not in first:
            problems.append(Problem(("indexes", i, "name"), f"index '{index['name']}' is not in migration "
                                                            f"{doc['migrations']['add_column']}: write the name "
                                                            "its CREATE INDEX gives"))
    for i, table in enumerate(doc["tables"]):
        fk = _foreign_key(table, tenant)
        if f'"{fk}"' not in first:
            problems.append(Problem(("tables", i, "foreign_key" if "foreign_key" in table else "name"),
                                    f"foreign key '{fk}' is not in migration {doc['migrations']['add_column']}: "
                                    "write the name its ADD CONSTRAINT gives under foreign_key"))
        if f'ALTER TABLE "{table["name"]}"' not in second:
            problems.append(Problem(("tables", i, "name"), f"migration {doc['migrations']['not_null']} does not "
                                                           f"alter table '{table['name']}': point migrations.not_null"
                                                           " at the migration that sets its tenant column NOT NULL"))
    return problems


# ---------------------------------------------------------------------------------------------
# Reporting and building
# ---------------------------------------------------------------------------------------------

def _report(path: Path, node, problems: list[Problem]) -> str:
    """One line per problem, in file order: the file, the line, where in the spec, what to do."""
    lines = sorted({(p.line or _line(node, p.path), _where(p.path), p.message) for p in problems})
    body = "\n".join(f"{path}, line {line}" + (f" ({where})" if where else "") + f": {message}"
                     for line, where, message in lines)
    count = f"{len(lines)} problems" if len(lines) > 1 else "1 problem"
    return f"tenancy spec {path}: {count}, nothing was loaded (the format: {DOCS})\n{body}"


def _line(node, path: tuple) -> int:
    """The 1-based line of the node at ``path``: a mapping entry's key line, a list item's first
    line; the deepest node found when the path goes further than the file."""
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(step)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _where(path: tuple) -> str:
    """``tables[1].parent.table`` for ('tables', 1, 'parent', 'table')."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _build(path: Path, raw: bytes, doc: dict) -> Spec:
    base = path.parent
    tenant_doc = doc["tenant"]
    tenant = TenantColumn(name=tenant_doc["column"], type=tenant_doc["type"],
                          table=tenant_doc["references"]["table"], key=tenant_doc["references"]["column"],
                          on_delete=tenant_doc["on_delete"], on_update=tenant_doc.get("on_update", "CASCADE"))
    return Spec(
        path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(), name=doc["name"],
        description=(doc.get("description") or "").strip(), tenant=tenant,
        user_rule=_build_rule(doc["user_rule"], base),
        tables=tuple(_build_table(t, tenant.name) for t in doc["tables"]),
        unique_keys=tuple(_build_unique_key(k, doc["indexes"]) for k in doc.get("unique_keys", [])),
        indexes=tuple(Index(i["name"], i["table"], tuple(i["columns"]), bool(i.get("unique", False)))
                      for i in doc["indexes"]),
        migrations=Migrations(*(_build_migration(doc["migrations"][k], base) for k in ("add_column", "not_null"))),
        quarantine_schema=doc["quarantine"]["schema"], title=doc.get("title") or doc["name"])


def _build_rule(rule: dict, base: Path) -> UserRule:
    if rule["kind"] == "sql":
        return UserRule(kind="sql", sql=(base / rule["sql"]).resolve())
    users = rule["users"]
    return UserRule(kind=rule["kind"],
                    users=UserTable(users["table"], users.get("key", "id"), users["default_tenant"]),
                    membership=Membership(**rule["membership"]))


def _build_table(table: dict, tenant: str) -> Table:
    parent = table.get("parent", {})
    return Table(name=table["name"], derivation=table["from"], key=table.get("key", "id"),
                 user_column=table.get("user"), parent_table=parent.get("table"),
                 parent_column=parent.get("column"),
                 foreign_key=_foreign_key(table, tenant))


def _build_unique_key(key: dict, indexes: list[dict]) -> UniqueKey:
    columns = tuple(key["columns"])
    index = next(i["name"] for i in indexes
                 if i.get("unique") and i["table"] == key["table"] and tuple(i["columns"]) == columns)
    return UniqueKey(table=key["table"], columns=columns, index=index,
                     winner=tuple(SortKey(s["column"], s["order"]) for s in key["winner"]))


def _build_migration(folder: str, base: Path) -> Migration:
    path = (base / folder).resolve()
    return Migration(name=path.name, path=path)
