"""How a row gets its tenant, as SQL made from the tenancy spec (docs/spec.md).

One expression per kind of derivation (``sql/backfill/value_<kind>.sql``) says where a row's
tenant comes from: its user's (the rule, ``tenancy_runbook.user_workspace``), its parent row's,
or its parent's when it has one else its user's. The same expressions make the transition
guard's trigger function and the batches of both backfill passes, so the guard, the batches and
the rule cannot disagree:

    steps = placement.steps(spec.active())       # one Step per table, in backfill order
    cur.execute(steps[0].pages, {"lo": "(0,0)", "hi": "(60,0)"})

Templates by kind (files in ``sql/backfill/``): ``pages_parent`` / ``batch_parent`` for a table
whose rows take their parent's (a join: a batch reaches most parents), ``pages_rule`` /
``batch_rule`` with a ``{value}`` for the others. Names reach SQL only as identifiers; the
owner role value and a table's name inside the guard's function body as literals (a function
body takes no bound parameter).
"""

from __future__ import annotations

from typing import NamedTuple

from psycopg import sql

from . import db, spec

GUARD_SQL = ("backfill/guard", "common/runbook_schema", "backfill/guard_rule", "backfill/guard_rule_set",
             "backfill/guard_place", "backfill/guard_branch", "backfill/value_user", "backfill/value_parent",
             "backfill/value_parent_else_user")
PASS_SQL = ("backfill/pages_rule", "backfill/batch_rule", "backfill/pages_parent", "backfill/batch_parent",
            "backfill/next_keys")


class Step(NamedTuple):
    """One table's backfill: its first-pass batch (heap pages [lo, hi)) and its second-pass batch
    (keys after ``after``, up to ``upto``, ``size`` of them), ready to run, and the files they
    are made from (for the dry run and the reviewer)."""
    table: str
    pages: sql.Composable
    keyset: sql.Composable
    files: tuple[str, str]


def identifiers(s: spec.Spec, table: spec.Table) -> dict:
    """The names a template of ``table`` may use: the table, its key, the tenant column, and its
    user column or parent (table, column, the parent's key) where it has them."""
    names = {"table": table.name, "key": table.key, "tenant": s.tenant.name}
    if table.uses_user:
        names["user_column"] = table.user_column
    if table.uses_parent:
        names.update(parent=table.parent_table, parent_column=table.parent_column,
                     parent_key=s.table(table.parent_table).key)
    return names


def value(s: spec.Spec, table: spec.Table, row: sql.Composable) -> sql.Composable:
    """The expression of ``table``'s derivation: the tenant a row (named ``row``) gets."""
    names = identifiers(s, table) | {"row": row}
    if table.derivation == "parent_else_user":
        return db.fragment("backfill/value_parent_else_user", **names,
                           parent_value=db.fragment("backfill/value_parent", **names),
                           user_value=db.fragment("backfill/value_user", **names))
    return db.fragment(f"backfill/value_{table.derivation}", **names)


def step(s: spec.Spec, table: spec.Table) -> Step:
    names = identifiers(s, table)
    if table.derivation == "parent":
        files = ("backfill/pages_parent", "backfill/batch_parent")
    else:
        files = ("backfill/pages_rule", "backfill/batch_rule")
        names["value"] = value(s, table, sql.Identifier("r"))
    pages, keyset = (db.load_sql(f, **names) for f in files)
    return Step(table.name, pages, keyset, files)


def steps(s: spec.Spec | None = None) -> tuple[Step, ...]:
    """Every table's Step, in backfill order (a parent before its children)."""
    s = s or spec.active()
    return tuple(step(s, t) for t in s.tables)


def rule_function(s: spec.Spec) -> sql.Composable:
    """CREATE OR REPLACE FUNCTION tenancy_runbook.user_workspace(user_id): the spec's user rule
    for one user (guard_rule.sql for ``default_else_owner``, guard_rule_set.sql over the rule's
    own file for ``sql``)."""
    rule = s.user_rule
    if rule.kind == "sql":
        return db.load_sql("backfill/guard_rule_set", rule=sql.SQL(db.subquery_text(rule.sql)))
    return db.load_sql("backfill/guard_rule", **s.rule_identifiers(), owner=sql.Literal(rule.membership.owner))


def rule_set(s: spec.Spec) -> sql.Composable:
    """The spec's user rule as a set of (user_id, tenant_id), for the checks' CTE user_workspace:
    common/user_workspace.sql for ``default_else_owner`` (the owner role bound as %(owner)s,
    rule_params), common/user_workspace_sql.sql over the rule's own file for ``sql``. It goes into
    statements run with bound parameters, so a ``%`` of the file is written ``%%`` there."""
    rule = s.user_rule
    if rule.kind == "sql":
        text = db.subquery_text(rule.sql).replace("%", "%%")
        return db.fragment("common/user_workspace_sql", rule=sql.SQL(text))
    return db.fragment("common/user_workspace", **s.rule_identifiers())


def rule_params(s: spec.Spec) -> dict:
    """The values rule_set() binds: the owner role's, for ``default_else_owner``; none for ``sql``."""
    return {"owner": s.user_rule.membership.owner} if s.user_rule.kind != "sql" else {}


def place_function(s: spec.Spec) -> sql.Composable:
    """CREATE OR REPLACE FUNCTION tenancy_runbook.place_workspace(): the guard's row trigger body,
    one branch per table of the spec."""
    new = sql.SQL("NEW")
    branches = [db.fragment("backfill/guard_branch", name=sql.Literal(t.name), tenant=s.tenant.name,
                            value=value(s, t, new)) for t in s.tables]
    return db.load_sql("backfill/guard_place", tenant=s.tenant.name, branches=sql.SQL("\n").join(branches))
