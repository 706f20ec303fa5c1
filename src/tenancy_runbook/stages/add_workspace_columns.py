"""10_add_workspace_columns: migration 1, online.

The end state is exactly migration.sql's (same names, same definitions, so Prisma sees no
drift), reached without blocking writers for longer than lock_timeout:
  * columns: ADD COLUMN (nullable, no default: no rewrite), brief lock;
  * indexes: CREATE [UNIQUE] INDEX CONCURRENTLY, outside a transaction; a failed concurrent
    build leaves an INVALID index, which is dropped (concurrently) and built again;
  * foreign keys: ADD ... NOT VALID (brief lock), then VALIDATE CONSTRAINT in its own
    transaction (a scan that lets reads and writes go on).
Each step is skipped when the schema shows it done, so a stopped run continues.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import pandas as pd
import psycopg
from psycopg import sql

from .. import db, history, interactive, locks, runlock, spec
from ..errors import GateFailed, RunbookError
from ..locks import DDLLog, RetryPolicy, run_ddl

READ_ONLY = False   # it writes (outside the runner only with confirm=True)
SQL = ("add_workspace_columns/detect", "add_workspace_columns/add_column", "add_workspace_columns/create_index",
       "add_workspace_columns/drop_index", "add_workspace_columns/add_foreign_key",
       "common/validate_constraint") + locks.SQL + history.SQL + runlock.WRITER_SQL + interactive.SQL

PLAN_WORDS = {   # a step as the dry run names it, by its statement ({}: the object's name)
    "add_workspace_columns/add_column": "add column {} (nullable)",
    "add_workspace_columns/create_index": "build index {}",
    "add_workspace_columns/add_foreign_key": "add foreign key {} NOT VALID",
    "common/validate_constraint": "validate foreign key {}",
}
TYPE = re.compile(r"(text|varchar\([1-9][0-9]*\))")   # as spec.schema.json allows
ACTIONS = {"CASCADE", "RESTRICT", "NO ACTION"}


class Step(NamedTuple):
    """One statement of migration 1 as the spec makes it: ``sql/<statement>.sql`` with these
    identifiers (keywords such as the type or UNIQUE as sql.SQL), on these tables."""
    what: str
    statement: str
    identifiers: dict
    tables: list


def migration() -> spec.Migration:
    """Migration 1 of the spec this run follows (its Prisma folder)."""
    return spec.active().migrations.add_column


def objects(s: spec.Spec) -> list[tuple[str, str, str]]:
    """(kind, table, name) of each object migration 1 creates, in the order they are made:
    the columns, then the indexes, then the foreign keys."""
    column = s.tenant.name
    return ([("column", t.name, f"{t.name}.{column}") for t in s.tables]
            + [("index", i.table, i.name) for i in s.indexes]
            + [("foreign key", t.name, t.foreign_key) for t in s.tables])


def add_column(s: spec.Spec, table: str) -> Step:
    return Step(f"add column {table}.{s.tenant.name}", "add_workspace_columns/add_column",
                {"table": table, "column": s.tenant.name, "type": _keyword(s.tenant.type, TYPE.fullmatch)}, [table])


def create_index(s: spec.Spec, name: str) -> Step:
    index = next(i for i in s.indexes if i.name == name)
    return Step(f"build index {name}", "add_workspace_columns/create_index",
                {"unique": sql.SQL("UNIQUE" if index.unique else ""), "index": name, "table": index.table,
                 "columns": list(index.columns)}, [index.table])


def add_foreign_key(s: spec.Spec, table: str, name: str) -> Step:
    t = s.tenant
    return Step(f"add {name} NOT VALID", "add_workspace_columns/add_foreign_key",
                {"table": table, "constraint": name, "column": t.name, "tenant_table": t.table,
                 "tenant_key": t.key, "on_delete": _keyword(t.on_delete, ACTIONS.__contains__),
                 "on_update": _keyword(t.on_update, ACTIONS.__contains__)}, [table, t.table])


def validate(s: spec.Spec, table: str, name: str) -> Step:
    return Step(f"validate {name}", "common/validate_constraint", {"table": table, "constraint": name},
                [table, s.tenant.table])


def steps(s: spec.Spec, kind: str, table: str, name: str, present: bool = False) -> list[Step]:
    """The statements that make one object of migration 1 (objects()), in order: a column or an
    index one each; a foreign key added NOT VALID (unless ``present``), then validated."""
    if kind == "column":
        return [add_column(s, table)]
    if kind == "index":
        return [create_index(s, name)]
    return ([] if present else [add_foreign_key(s, table, name)]) + [validate(s, table, name)]


def _keyword(value: str, allowed) -> sql.SQL:
    """A type or an action, from the spec, as SQL text: only the values the spec's schema allows."""
    if not allowed(value):
        raise RunbookError(f"the tenancy spec gives {value!r} where migration 1 needs a type or ON DELETE/"
                           "UPDATE action docs/spec.md allows; correct the spec.")
    return sql.SQL(value.upper())


def detect(conn: psycopg.Connection) -> pd.DataFrame:
    """Each object migration 1 creates: present, and complete (valid / validated)."""
    s = spec.active()
    kinds, tables, names = (list(x) for x in zip(*objects(s)))
    return db.frame(conn, "add_workspace_columns/detect",
                    {"kinds": kinds, "tables": tables, "names": names, "column": s.tenant.name})


def _hand_changed(conn: psycopg.Connection, state: pd.DataFrame) -> str:
    m = migration()
    missing = ", ".join(state.loc[~state["complete"], "name"])
    return (f"Migration 1 is recorded as applied in {history.where(conn)}, but the schema lacks: {missing}. "
            f"Someone changed the schema by hand; compare it with {m.sql} before going on.")


def apply(conn: psycopg.Connection, policy: RetryPolicy, run_id: str, log: DDLLog) -> dict:
    """Bring the schema to migration 1, step by step; record it as applied. What was done."""
    s, m = spec.active(), migration()
    state = detect(conn)
    recorded = history.is_applied(conn, m.name)
    if recorded and state["complete"].all():
        return {"action": f"already applied (recorded in {history.where(conn)}): nothing to do"}
    if recorded:
        raise GateFailed(_hand_changed(conn, state))
    for row in state.itertuples():
        if not row.complete:
            for step in steps(s, row.kind, row.table, row.name, row.present):
                _run(conn, s, step, policy, log)
    after = detect(conn)
    if not after["complete"].all():
        raise GateFailed("Migration 1 incomplete after the stage: "
                         + ", ".join(after.loc[~after["complete"], "name"]) + ". Run the stage again.")
    where = history.record_applied(conn, m.name, history.digest(m.sql.read_bytes()), run_id)
    done = "applied" if not state["complete"].all() else "already in the schema"
    return {"action": f"{done}; recorded in {where}"}


def _run(conn, s: spec.Spec, step: Step, policy: RetryPolicy, log: DDLLog) -> None:
    """One step under locks.run_ddl: an index built concurrently, outside a transaction
    (_build_index), queueing no writer; a VALIDATE queueing none either; the rest as they are."""
    if step.statement == "add_workspace_columns/create_index":
        run_ddl(conn, step.what, step.tables, lambda: _build_index(conn, s, step.identifiers["index"]), policy,
                log, queues_writers=False, transaction=False)
    else:
        run_ddl(conn, step.what, step.tables, lambda: db.execute(conn, step.statement, **step.identifiers),
                policy, log, queues_writers=step.statement != "common/validate_constraint")


def _build_index(conn: psycopg.Connection, s: spec.Spec, name: str) -> None:
    """Drop an INVALID leftover, then build concurrently (both outside a transaction)."""
    present, valid = _index_state(conn, name)
    if present and not valid:
        db.execute(conn, "add_workspace_columns/drop_index", index=name)
    step = create_index(s, name)
    try:
        db.execute(conn, step.statement, **step.identifiers)
    except psycopg.errors.UniqueViolation as exc:
        columns = ", ".join(step.identifiers["columns"])
        raise GateFailed(f"building {name} failed: {str(exc).strip()}. Rows of {step.identifiers['table']} "
                         f"already share a ({columns}). The failed build left an INVALID index, which the "
                         "next run drops and rebuilds. Resolve the duplicates (00_preflight, "
                         "30_check_backfill list them), then run this stage again.") from None
    if not _index_state(conn, name)[1]:
        raise GateFailed(f"index {name} is INVALID after its concurrent build; run the stage again "
                         "(it drops and rebuilds it).")


def _index_state(conn: psycopg.Connection, name: str) -> tuple[bool, bool]:
    """(exists, valid) for one of migration 1's indexes."""
    state = detect(conn).set_index("name").loc[name]
    return bool(state["present"]), bool(state["complete"])


def plan(conn: psycopg.Connection) -> interactive.Plan:
    """What apply() would do now, changing nothing (a dry run): each step still to do, in order,
    with the statement it runs."""
    s, m = spec.active(), migration()
    state = detect(conn)
    recorded = history.is_applied(conn, m.name)
    if recorded and not state["complete"].all():
        return interactive.plan("10_add_workspace_columns", [], refusal=_hand_changed(conn, state))
    todo = []
    for row in state.itertuples():
        if row.complete:
            continue
        if row.kind == "index" and row.present:
            todo.append({"step": f"drop the INVALID leftover of index {row.name}", "table": row.table,
                         "sql": interactive.statement("add_workspace_columns/drop_index", index=row.name)})
        todo += [{"step": PLAN_WORDS[step.statement].format(row.name), "table": row.table,
                  "sql": interactive.statement(step.statement, **step.identifiers)}
                 for step in steps(s, row.kind, row.table, row.name, row.present)]
    if not recorded:
        todo.append({"step": f"record migration 1 as applied in {history.where(conn)}"})
    return interactive.plan("10_add_workspace_columns", todo)
