"""40_enforce_not_null: migration 2, online.

First a last sweep (the backfill once more, then the orphans' rows per on_orphan). Then the
seed's Option B semantics: with any NULL left it refuses, with the counts, before any
change. Then, per table, the recipe that never holds a lock for a table scan:
  CHECK (<tenant column> IS NOT NULL) NOT VALID  -> VALIDATE CONSTRAINT (writers go on)
  -> SET NOT NULL (no scan: the valid CHECK proves it) -> DROP the CHECK.
Each DDL step waits at most lock_timeout per attempt and retries with backoff. The tables, the
tenant column and migration 2 are the tenancy spec's (spec.active()). Carried forward again
after a 90_rollback, it also records (and writes, for the team to commit) the Prisma migration
that makes the columns required again (record_in_history), so Prisma's history agrees.
"""

from __future__ import annotations

import re

import psycopg

from .. import checks, db, history, interactive, spec
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl
from . import backfill

READ_ONLY = False   # it writes (outside the runner only with confirm=True)
SQL = (backfill.SQL + ("enforce_not_null/check_state", "enforce_not_null/add_check", "common/validate_constraint",
                      "enforce_not_null/set_not_null", "enforce_not_null/drop_check") + history.SQL)


def migration() -> spec.Migration:
    """Migration 2 of the spec this run follows (its Prisma folder)."""
    return spec.active().migrations.not_null


def check_name(table: str) -> str:
    """The runbook's temporary CHECK on ``table``: tenancy_runbook_<table>_<tenant column>_check."""
    return f"tenancy_runbook_{table}_{spec.active().tenant.name}_check"


def apply(conn: psycopg.Connection, policy: RetryPolicy, run_id: str, log: DDLLog) -> dict:
    checks.require_columns(conn, "40_enforce_not_null")
    s, m = spec.active(), migration()
    column = s.tenant.name
    states = checks.column_state(conn).set_index("table")["state"]
    recorded = history.is_applied(conn, m.name)
    if recorded and (states == "NOT NULL").all():
        return {"action": f"already applied (recorded in {history.where(conn)}): nothing to do"}
    counts = checks.null_counts(conn)
    if counts["nulls"].sum():
        raise GateFailed(checks.null_message(counts))
    for table in s.table_names:
        if states[table] == "NOT NULL":
            continue
        name = check_name(table)
        state = _check_state(conn, table)
        if state == "absent":
            run_ddl(conn, f"{table}: add CHECK NOT VALID", [table],
                    lambda t=table, n=name: db.execute(conn, "enforce_not_null/add_check", table=t, constraint=n,
                                                       column=column),
                    policy, log)
        if state != "validated":
            try:
                run_ddl(conn, f"{table}: validate CHECK", [table],
                        lambda t=table, n=name: db.execute(conn, "common/validate_constraint", table=t,
                                                                   constraint=n),
                        policy, log, queues_writers=False)
            except psycopg.errors.CheckViolation:
                raise GateFailed(checks.null_message(checks.null_counts(conn))
                                 + " (a NULL arrived after the sweep; the CHECK now rejects new ones: "
                                 "run the stage again)") from None
        run_ddl(conn, f"{table}: SET NOT NULL", [table],
                lambda t=table: db.execute(conn, "enforce_not_null/set_not_null", table=t, column=column),
                policy, log)
    for table in s.table_names:
        if _check_state(conn, table) != "absent":
            run_ddl(conn, f"{table}: drop CHECK", [table],
                    lambda t=table: db.execute(conn, "enforce_not_null/drop_check", table=t,
                                               constraint=check_name(t)), policy, log)
    where = history.record_applied(conn, m.name, history.digest(m.sql.read_bytes()), run_id)
    return {"action": f"applied; recorded in {where}"}


# migration 2's statements: ALTER TABLE "<Table>" ALTER COLUMN "<column>" SET NOT NULL;
_SET_NOT_NULL = re.compile(r'^ALTER TABLE "((?:[^"]|"")+)" ALTER COLUMN "(?:[^"]|"")+" SET NOT NULL;$', re.M)


def prisma_steps(statement: str) -> str:
    """A Prisma migration over migration 2's tables, in its order: one ``-- AlterTable`` step per
    table, each ``statement`` (an sql/ file over {table} and {column}) as the stages run it. With
    enforce_not_null/set_not_null it is migration 2's own text when Prisma wrote that."""
    column = spec.active().tenant.name
    tables = [t.replace('""', '"') for t in _SET_NOT_NULL.findall(migration().sql.read_text())]
    steps = [f"-- AlterTable\n{interactive.statement(statement, table=t, column=column)};" for t in tables]
    return "\n\n".join(steps) + "\n"


def record_in_history(conn: psycopg.Connection, run_id: str) -> history.Recorded:
    """After apply, Prisma's history agrees with the database. Usually migration 2 is its last word
    and nothing more is recorded. After a 90_rollback (whose migration made the columns nullable
    in the history), the migration that makes them required again, what `prisma migrate dev`
    generates when the fields become ``String`` again (migration 2's steps), is recorded as applied
    under a new name (``<UTC timestamp>_<migration 2's name without its timestamp>``) and written
    into the run directory for the team to commit (history.follow_up)."""
    m = migration()
    last = history.last_word(conn, m.name)
    if not history.says_nullable(last):
        said = last["name"] if last else "nothing (not recorded)"
        return history.Recorded(f"Prisma's history: nothing more to record; its last word on these columns "
                                f"is {said} in {history.where(conn)}, which makes them required.")
    return history.follow_up(conn, m.name, False, prisma_steps("enforce_not_null/set_not_null"), run_id,
                             "in the same commit as the schema change (the fields required again: String)")


def _check_state(conn: psycopg.Connection, table: str) -> str:
    return db.one(conn, "enforce_not_null/check_state",
                  {"table": table, "constraint": check_name(table)})["state"]


def plan(conn: psycopg.Connection, on_orphan: str) -> interactive.Plan:
    """What this stage would do now, changing nothing (a dry run): the last sweep's rows per table,
    then, per table still nullable, each step of the recipe with its statement. It would refuse
    while a NULL would stay after the sweep (on_orphan='fail'), or without the guard (the sweep
    batches only with it on)."""
    stage = "40_enforce_not_null"
    try:
        checks.require_columns(conn, stage)
    except GateFailed as exc:
        return interactive.plan(stage, [], refusal=str(exc))
    s = spec.active()
    column = s.tenant.name
    states = checks.column_state(conn).set_index("table")["state"]
    recorded = history.is_applied(conn, migration().name)
    after_rollback = history.says_nullable(history.last_word(conn, migration().name))
    if recorded and (states == "NOT NULL").all() and not after_rollback:
        return interactive.plan(stage, [], notes=[f"Migration 2 is applied (recorded in {history.where(conn)})."])
    refusal = ""
    if not backfill.guard_state(conn)["guarded"].all():
        refusal = ("The transition guard is not installed on every table, and the last sweep batches only "
                   "with it on: run 20_backfill first.")
    left = backfill.leftover(conn).set_index("table")
    steps = [{"step": f"last sweep: backfill {column} by the rule, in batches", "table": table,
              "rows": int(left.loc[table, "nulls"] - left.loc[table, "unplaceable"])}
             for table in s.table_names if left.loc[table, "nulls"] > left.loc[table, "unplaceable"]]
    unplaceable = left["unplaceable"]
    if unplaceable.sum() and backfill.check_choice("on_orphan", on_orphan) == "quarantine":
        steps += [{"step": "last sweep: quarantine the rows the rule cannot place", "table": table,
                   "rows": int(unplaceable[table]), "sql": "sql/quarantine/move_unplaced.sql"}
                  for table in s.table_names if unplaceable[table]]
    elif unplaceable.sum():
        refusal = refusal or checks.null_message(unplaceable.rename("nulls").reset_index())
    checks_left = {table: _check_state(conn, table) for table in s.table_names}
    for table, state in checks_left.items():
        if states[table] == "NOT NULL":
            continue
        if state == "absent":
            steps.append({"step": "add CHECK NOT VALID", "table": table, "sql": interactive.statement(
                "enforce_not_null/add_check", table=table, constraint=check_name(table), column=column)})
        if state != "validated":
            steps.append({"step": "validate CHECK", "table": table, "sql": interactive.statement(
                "common/validate_constraint", table=table, constraint=check_name(table))})
        steps.append({"step": "SET NOT NULL", "table": table,
                      "sql": interactive.statement("enforce_not_null/set_not_null", table=table, column=column)})
    steps += [{"step": "drop CHECK", "table": table, "sql": interactive.statement(
        "enforce_not_null/drop_check", table=table, constraint=check_name(table))}
        for table, state in checks_left.items() if states[table] != "NOT NULL" or state != "absent"]
    if not recorded:
        steps.append({"step": f"record migration 2 as applied in {history.where(conn)}"})
    if after_rollback:
        steps.append({"step": f"record the migration that makes the columns required again in "
                              f"{history.where(conn)}, after the rollback's, and write it into the run directory",
                      "sql": prisma_steps("enforce_not_null/set_not_null")})
    return interactive.plan(stage, steps, refusal=refusal)
