"""60_remove_guard (runbooks/finish.yaml): take the transition guard off once the rollout is over.

The guard (20_backfill) lets application servers of the old version keep writing rows
without the tenant column, even after NOT NULL, so the runbook leaves it on. It counts, per table,
the rows it places (and those it cannot place) and when it last did (sql/backfill/guard.sql).
This stage removes it only once NOT NULL is enforced on every guarded table (40_enforce_not_null:
without it, such a row would stay NULL after the removal) and the guard has been quiet for
``quiet_period``: no such row for that long, and counting for at least that long. The check is made again under the tables' locks,
in the transaction that drops the triggers, so no row written between the check and the
removal goes unseen. Afterwards a row written without the tenant column is rejected by NOT NULL.
The tables and the tenant column are the tenancy spec's (spec.active()).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import psycopg

from .. import checks, db, interactive, locks, params, runbook, runlock, spec
from ..errors import GateFailed
from ..locks import DDLLog, RetryPolicy, run_ddl
from .backfill import guard_state

READ_ONLY = False   # it writes (outside the runner only with confirm=True)
SQL = ("remove_guard/placements_present", "remove_guard/placements", "remove_guard/drop_trigger",
       "remove_guard/drop_functions", "remove_guard/drop_placements", "remove_guard/drop_schema_if_empty",
       "backfill/guard_state", "common/column_state") + locks.SQL + runlock.WRITER_SQL + interactive.SQL


def _finish() -> str:
    """The command that runs this stage for the spec of the run (Data Hub: runbooks/finish.yaml)."""
    return runbook.command("60_remove_guard")


def _migrate() -> str:
    """The command that runs the migration itself (Data Hub: runbooks/datahub-tenancy.yaml)."""
    return runbook.command("20_backfill")


COLUMNS = ["table", "guarded", "placed", "unplaced", "last_at", "last_s_ago", "counting_since", "counting_s"]


def placements(conn: psycopg.Connection) -> pd.DataFrame:
    """Per table: guarded, rows placed / not placeable since the guard began counting, when it
    last handled one (``last_at``, ``last_s_ago``), and since when it counts (``counting_since``,
    ``counting_s``; NaT/NaN when it does not count: not installed, or by an earlier version)."""
    if db.one(conn, "remove_guard/placements_present")["present"]:
        frame = db.frame(conn, "remove_guard/placements", {"tables": list(spec.active().table_names)})
    else:
        frame = guard_state(conn).assign(placed=0, unplaced=0, last_at=None, last_s_ago=math.nan,
                                         counting_since=None, counting_s=math.nan)
    for column in ("last_at", "counting_since"):         # to the second, for reading
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.floor("s")
    for column in ("last_s_ago", "counting_s"):          # rounded down: never quieter than it was
        frame[column] = np.floor(frame[column].astype(float) * 10) / 10
    return frame[COLUMNS]


def report(frame: pd.DataFrame) -> str:
    """What the guard did, in words, for the notebook."""
    on = frame.loc[frame["guarded"], "table"].tolist()
    if not on:
        return ("The transition guard is not installed on any table (already removed, or never "
                "installed): nothing to remove.")
    if pd.isna(frame["counting_since"].iloc[0]):
        return (f"The transition guard is on {', '.join(on)}; it does not count the rows it places "
                "(installed by an earlier version of tenancy-runbook).")
    lines = [f"The transition guard is on {', '.join(on)}; it has counted since "
             f"{_utc(frame['counting_since'].iloc[0])} ({_span(frame['counting_s'].iloc[0])} ago)."]
    handled = frame[frame["placed"] + frame["unplaced"] > 0]
    lines += [f"  {_rows(r)}" for r in handled.itertuples()] or ["  It has placed no row: no old "
                                                                  "application server wrote one since."]
    return "\n".join(lines)


def not_quiet(frame: pd.DataFrame, quiet_period: str) -> str:
    """Why the guard may not come off yet ("" when it may): it placed a row within quiet_period,
    or has not counted that long. Nothing to wait for when it is on no table, or quiet_period is 0."""
    if not frame["guarded"].any():
        return ""
    return _why_not_quiet(frame, quiet_period)


def not_enforced(conn: psycopg.Connection, guarded: list[str] | None = None) -> str:
    """Why the guard may not come off yet ("" when it may): the tenant column of a table it guards
    (``guarded``, default: the tables it is on now) is still nullable, the runbook stopped before
    40_enforce_not_null. Removed then, a row an old server writes without the tenant column would
    stay NULL, unseen, instead of being placed or rejected."""
    if guarded is None:
        state = guard_state(conn)
        guarded = state.loc[state["guarded"], "table"].tolist()
    states = checks.column_state(conn, guarded).set_index("table")["state"]
    nullable = [t for t in guarded if states[t] == "nullable"]
    if not nullable:
        return ""
    column = spec.active().tenant.name
    return (f"Not removing the transition guard: {column} is still nullable on {', '.join(nullable)} "
            "(40_enforce_not_null has not run). Without the guard, a row an application server of the "
            f"old version writes without a {column} would stay NULL. Nothing was changed.\n"
            f"Run `{_migrate()}` to its end (a re-run resumes "
            f"where the last one stopped), then `{_finish()}` once the new application version runs everywhere.")


def run(conn: psycopg.Connection, policy: RetryPolicy, log: DDLLog, quiet_period: str) -> pd.DataFrame:
    """Remove the guard: the triggers (all its tables in one transaction, after checking NOT NULL
    and the counts again under their locks), then the functions and the counts, then the schema if
    empty. The guard state afterwards, with ``removed``: the tables it came off in this run."""
    before = guard_state(conn)
    on = before.loc[before["guarded"], "table"].tolist()
    counted = db.one(conn, "remove_guard/placements_present")["present"]

    def drop_triggers():
        for table in on:
            db.execute(conn, "remove_guard/drop_trigger", table=table)
        # The tables are locked now (SHARE ROW EXCLUSIVE): every transaction that wrote to them
        # has ended, and its count is visible. Enforced and quiet still? Else roll back: the guard stays.
        problem = not_enforced(conn, on) or (counted and _why_not_quiet(placements(conn), quiet_period))
        if problem:
            raise GateFailed(problem)

    if on:
        run_ddl(conn, f"remove guard from {', '.join(on)}", on, drop_triggers, policy, log)
    with conn.transaction():
        db.execute(conn, "remove_guard/drop_functions")
        db.execute(conn, "remove_guard/drop_placements")
    try:
        with conn.transaction():
            db.execute(conn, "remove_guard/drop_schema_if_empty")
    except psycopg.errors.DependentObjectsStillExist:
        pass   # it holds the runbook's own tables (applied_migrations, progress): they stay
    return guard_state(conn).assign(removed=lambda f: f["table"].isin(on))


def outcome(state: pd.DataFrame) -> str:
    removed = state.loc[state["removed"], "table"].tolist()
    if removed:
        return (f"Removed the transition guard from {', '.join(removed)}: a row written without a "
                f"{spec.active().tenant.name} is no longer placed (with NOT NULL enforced, it is rejected).")
    return "The transition guard was already removed: nothing was changed."


def _why_not_quiet(frame: pd.DataFrame, quiet_period: str) -> str:
    quiet_s = params.duration_ms(quiet_period) / 1000
    if quiet_s == 0:
        return ""
    force = (f"`{_finish()} -p quiet_period 0` removes it now: every row an old server writes after "
             "that fails with a NOT NULL violation (lost writes, errors in the application).")
    if pd.isna(frame["counting_since"].iloc[0]):
        return ("Not removing the transition guard: it does not count the rows it places (installed "
                "by an earlier version of tenancy-runbook), so it cannot tell whether an application "
                "server of the old version still writes. Nothing was changed.\nStart counting with "
                f"`{_migrate()} --from 20_backfill --to 20_backfill` "
                f"(it re-installs the guard; rows already done are not written again), then run `{_finish()}` "
                f"again after quiet_period ({quiet_period}).\n" + force)
    recent = frame[(frame["placed"] + frame["unplaced"] > 0) & (frame["last_s_ago"] < quiet_s)]
    since = frame["counting_since"].iloc[0]
    young = frame["counting_s"].iloc[0] < quiet_s
    if recent.empty and not young:
        return ""
    lines = ["Not removing the transition guard: an application server of the old version may still "
             f"write rows without a {spec.active().tenant.name} (quiet_period {quiet_period})."]
    if len(recent):
        lines += [f"Within quiet_period the guard placed rows in {len(recent)} table(s) "
                  f"(counts since {_utc(since)}):"]
        lines += [f"  {_rows(r)}" for r in recent.itertuples()]
    if young:
        lines.append(f"The guard has counted for only {_span(frame['counting_s'].iloc[0])}"
                     + ("" if len(recent) else f" (since {_utc(since)})") + ", less than quiet_period.")
    earliest = _utc(max([since, *recent["last_at"]]) + pd.Timedelta(seconds=quiet_s))
    lines += ["Nothing was changed. Finish deploying the new application version everywhere (or stop the "
              f"old servers), then run `{_finish()}` again once the guard has placed no row for "
              f"{quiet_period} ({earliest} at the earliest).", force]
    return "\n".join(lines)


def _rows(row) -> str:
    counts = f"{row.placed} row{'s' if row.placed != 1 else ''} placed"
    if row.unplaced:
        counts += f", {row.unplaced} it could not place"
    return f"{row.table}: {counts}, the last {_span(row.last_s_ago)} ago ({_utc(row.last_at)})"


def _utc(at) -> str:
    return pd.Timestamp(at).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}min {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}min"


def plan(conn: psycopg.Connection, frame: pd.DataFrame, quiet_period: str) -> interactive.Plan:
    """What run() would do now, changing nothing (a dry run), from the guard's state and its counts
    (``frame``: placements()): the triggers it would drop, then the functions, the counts and the
    schema if empty; and why a confirmed run would refuse (NOT NULL not enforced, not quiet)."""
    stage = "60_remove_guard"
    on = frame.loc[frame["guarded"], "table"].tolist()
    if not on:
        return interactive.plan(stage, [], notes=["The transition guard is not installed on any table: "
                                                  "nothing to remove."])
    steps = [{"step": "remove the transition guard (its triggers)", "table": table,
              "sql": interactive.statement("remove_guard/drop_trigger", table=table)} for table in on]
    steps += [{"step": "drop the guard's functions", "sql": interactive.statement("remove_guard/drop_functions")},
              {"step": "drop the guard's counts", "sql": interactive.statement("remove_guard/drop_placements")},
              {"step": "drop schema tenancy_runbook if nothing is left in it",
               "sql": "sql/remove_guard/drop_schema_if_empty.sql"}]
    return interactive.plan(stage, steps, refusal=not_enforced(conn, on) or not_quiet(frame, quiet_period))
