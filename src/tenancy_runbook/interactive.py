"""Writes outside the runner are explicit, and recorded.

A writing stage (its stage module says ``READ_ONLY = False``; 90_rollback keeps a rule of its own,
CONFIRM_ALWAYS) run on its own (JupyterLab, plain papermill) is a dry run unless its parameter
``confirm`` is True: it connects read-only (PostgreSQL refuses any write of it), shows what it
would do (its stage module's ``plan()``: the steps still to do, their SQL, the rows concerned,
and why a confirmed run would refuse, if it would) and ends, passing, saying plainly that it
was a dry run.

Confirmed, it writes as under the runner, and first records who runs it (the database role, the
OS user and host of the kernel), when, which stage and under which run id in
``tenancy_runbook.interactive_writes`` (created if absent, like the control tables; a role
that may not create it is told the GRANT, before anything is written); when its writes are done,
what it changed. The next run's manifest lists the interactive writes made since the previous
run against the same database (:func:`for_manifest`, :func:`since`).

Under the runner (db.RUN_ID_ENV set for its kernels) nothing changes: the stages write with no
confirm, and nothing is recorded here, the run itself being the explicit act (its manifest).
"""

from __future__ import annotations

import getpass
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from . import archive, db, runlock, stages
from .errors import RunbookError

CONFIRM_ALWAYS = ("90_rollback",)   # writes only with confirm=True, under the runner too
TABLE = "tenancy_runbook.interactive_writes"
# pg_advisory_xact_lock key while the table is created: not the run lock's, not control's ("intr")
ENSURE_KEY = {"classid": runlock.KEY["classid"], "objid": 0x696E7472}
SQL = ("control/ensure_lock", "interactive/ensure", "interactive/present", "interactive/record",
       "interactive/finish", "interactive/since", "common/runbook_schema")
PLAN_COLUMNS = ["step", "table", "rows", "sql"]
HOW_TO_CONFIRM = ("run it again with confirm=True (papermill -p confirm True; in JupyterLab, set "
                  "confirm = True in the parameters cell and run all cells), or through the runner "
                  "(tenancy-runbook run ...)")


def under_runner() -> bool:
    """Is this kernel one of a `tenancy-runbook run` (the runner sets db.RUN_ID_ENV for its kernels)?"""
    return bool(os.environ.get(db.RUN_ID_ENV, "").strip())


def confirm_outside_runner_only(stage: str) -> bool:
    """Does ``stage`` (a notebook's stem) write under the runner with no ``confirm``, and outside
    it only with ``confirm=True``? Every writing stage (stages.read_only) but CONFIRM_ALWAYS."""
    return not stages.read_only(stage) and stage not in CONFIRM_ALWAYS


def writes(confirm, stage: str) -> bool:
    """Does this run of ``stage`` write? Under the runner, always; outside it, only with
    ``confirm=True``. Says which it is (a dry run, or a confirmed write that is recorded)."""
    if under_runner():
        return True
    if confirm is True:
        print(f"Confirmed (confirm=True): {stage} run outside the runner writes. Who runs it, when and "
              f"what it changes are recorded in {TABLE} before its first write; the next run's "
              "manifest lists it.")
        return True
    print(f"Dry run: {stage} run outside the runner changes nothing unless confirm=True. Its connection "
          f"is read-only; it shows what it would do. To write, {HOW_TO_CONFIRM}.")
    return False


# --------------------------------------------------------------------------- the record
def ensure(conn: psycopg.Connection) -> None:
    """tenancy_runbook.interactive_writes (created if absent; the schema too, unless an
    administrator created it). Needs a read-write connection; a RunbookError with the GRANT
    when the role may not create it."""
    try:
        with conn.transaction():
            db.execute(conn, "control/ensure_lock", ENSURE_KEY)
            db.execute(conn, "interactive/ensure")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RunbookError(_denied("create", exc, conn)) from None


def present(conn: psycopg.Connection) -> bool:
    """Has an interactive write ever been recorded in this database (does the table exist)?"""
    return bool(db.one(conn, "interactive/present")["present"])


def record(conn: psycopg.Connection, stage: str, run_id: str) -> int | None:
    """Before a confirmed interactive write: who (database role, OS user, host, pid), when, which
    stage, which run id, into tenancy_runbook.interactive_writes. Its id (for :func:`finish`);
    None under the runner (its manifest is the record), where nothing is written here."""
    if under_runner():
        return None
    if getattr(conn, "read_only", False):
        raise RunbookError(f"{stage}: interactive.record() needs the stage's read-write connection "
                           "(a dry run writes nothing, so it records nothing).")
    ensure(conn)
    try:
        row = db.one(conn, "interactive/record", {"stage": stage, "run_id": run_id, "os_user": os_user(),
                                                  "host": runlock.host(), "pid": os.getpid()})
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RunbookError(_denied("write to", exc, conn)) from None
    print(f"Recorded in {TABLE} (id {row['id']}): {stage}, run {row['run_id']}, by database user "
          f"{row['db_user']}, OS user {row['os_user'] or '(unknown)'} on {row['host']}, at "
          f"{row['at'].isoformat(timespec='seconds')}.")
    return row["id"]


def finish(conn: psycopg.Connection, record_id: int | None, changed=None, ddl=None) -> None:
    """The confirmed interactive write ``record_id`` is done: what it changed, in short (a dict,
    text or a DataFrame), with the DDL steps it ran (``ddl``: the stage's locks.DDLLog). Nothing
    under the runner (``record_id`` None)."""
    if record_id is None:
        return
    if ddl is not None and ddl.steps:
        changed = {**(changed if isinstance(changed, dict) else {"changed": changed}),
                   "ddl_steps": [step["step"] for step in ddl.steps]}
    db.one(conn, "interactive/finish", {"id": record_id, "changed": Jsonb(plain(changed))})


def since(conn: psycopg.Connection, after=None) -> list[dict]:
    """The interactive writes that began after ``after`` (ISO text or a datetime, e.g. when the
    previous run started: for_manifest; None: all), oldest first, as JSON-ready dicts: id, at,
    ended_at (None: it stopped before its writes were done), stage, run_id, db_user, os_user,
    host, pid, changed. Empty when none was ever recorded. Reads only (any connection)."""
    if not present(conn):
        return []
    found = db.rows(conn, "interactive/since", {"after": after})
    return [plain(row) for row in found]


def for_manifest(conn: psycopg.Connection, run_dir, database: dict, started_at: str) -> dict:
    """A run's manifest ``interactive_writes``: the writes made outside the runner since the
    previous run against the same database (archive.previous_manifest; none: every one recorded).

    Bounded by when that run *started*: no interactive write can happen while a run holds the
    runbook's lock (a confirmed one takes it), so this is "since it ended" too, and it tolerates
    a skew of up to that run's length between this machine's clock (the manifest's times) and
    the database server's (``at``). On ``conn`` (read-only will do; the runner's lock session);
    a database error is reported in the result, never raised: the run goes on."""
    link = archive.previous_manifest(Path(run_dir), database, started_at)
    previous = {}
    if link:
        try:
            previous = json.loads((Path(run_dir).resolve() / link["path"]).resolve().read_text())
        except (OSError, ValueError):
            previous = {}
    after = previous.get("started_at")
    out = {"previous_run": link["run_id"] if link else None, "since": after}
    try:
        out["writes"] = since(conn, after)
    except psycopg.Error as exc:
        out["writes"], out["error"] = None, db.redact(f"{type(exc).__name__}: {str(exc).strip()}")
    return out


def os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def plain(value):
    """``value`` as JSON takes it: a DataFrame as its records, times as ISO text, numpy numbers
    as numbers, a missing value (NaN, NaT) as None."""
    def default(v):
        if isinstance(v, pd.DataFrame):
            return v.to_dict("records")
        if v is pd.NaT:
            return None
        return archive.plain(v)

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return None if isinstance(v, float) and not math.isfinite(v) else v
    return clean(json.loads(json.dumps(value, default=default)))


def _denied(what: str, exc: Exception, conn: psycopg.Connection) -> str:
    return (f"cannot {what} {TABLE}, where a write made outside the runner is recorded before it is "
            f"made: {str(exc).strip()}. Nothing was changed. Grant the role CREATE on the database (or "
            f"create schema tenancy_runbook and GRANT USAGE, CREATE ON SCHEMA tenancy_runbook TO "
            f"{conn.info.user}; if the table exists, GRANT SELECT, INSERT, UPDATE ON {TABLE} TO "
            f"{conn.info.user}), or run the stage through the runner; then run it again.")


# --------------------------------------------------------------------------- dry runs
@dataclass
class Plan:
    """What a writing stage would do now, found without writing (its module's ``plan()``)."""

    stage: str
    steps: pd.DataFrame                 # one row per step still to do: PLAN_COLUMNS
    refusal: str = ""                   # why a confirmed run would stop, before writing ("": it would not)
    notes: list[str] = field(default_factory=list)

    def show(self) -> None:
        """The plan in the notebook: its steps (with their SQL), what it would refuse."""
        from IPython.display import display

        if len(self.steps):
            print(f"{self.stage} with confirm=True would, in this order:")
            shown = self.steps
            if shown["rows"].isna().all():
                shown = shown.drop(columns="rows")
            with pd.option_context("display.max_colwidth", None):   # each statement whole
                display(shown)
        elif not self.refusal:
            print(f"{self.stage} with confirm=True would change nothing: everything is done already.")
        for note in self.notes:
            print(note)
        if self.refusal:
            print(f"A confirmed run would refuse now, before writing: {self.refusal}")

    def summary(self) -> list[str]:
        """One line per step (for the dry run's summary): table: step (rows)."""
        return [(f"{r.table}: " if r.table else "") + r.step + ("" if pd.isna(r.rows) else f" ({int(r.rows)} rows)")
                for r in self.steps.itertuples()]


def plan(stage: str, steps: list[dict], refusal: str = "", notes: list[str] | None = None) -> Plan:
    """A Plan from ``steps`` (dicts with PLAN_COLUMNS' keys; rows and sql optional)."""
    frame = pd.DataFrame([{k: s.get(k) for k in PLAN_COLUMNS} for s in steps], columns=PLAN_COLUMNS)
    frame["rows"] = frame["rows"].astype("Int64")
    frame["table"] = frame["table"].fillna("")
    frame["sql"] = frame["sql"].fillna("")
    return Plan(stage, frame, refusal, list(notes or []))


def statement(name: str, /, **identifiers) -> str:
    """The statement in ``sql/<name>.sql`` on one line, comments left out, identifiers filled in:
    for a plan's ``sql`` column (what would run, exactly)."""
    text = db.load_sql(name, **identifiers).as_string(None)
    lines = [line.split("--", 1)[0] if not line.lstrip().startswith("--") else "" for line in text.splitlines()]
    return re.sub(r"\s+", " ", " ".join(lines)).strip().rstrip(";")


def dry_run(found: Plan) -> None:
    """The dry run's last words: nothing was changed, what confirm=True would do, how to confirm;
    the same as the notebook's summary."""
    from . import nb

    if found.refusal:
        would = f"With confirm=True it would refuse now: {found.refusal} "
    elif len(found.steps):
        would = f"With confirm=True it would run the {len(found.steps)} step(s) its plan lists above. "
    else:
        would = "With confirm=True it would change nothing: everything is done already. "
    print(f"Dry run: {found.stage} changed nothing (confirm is not True; its connection was read-only). "
          + would + f"To write, {HOW_TO_CONFIRM}.")
    facts = {"dry_run": "nothing was changed (confirm is not True)",
             "would": found.summary() or ("nothing" if found.refusal else "nothing: everything is done already")}
    nb.summary(**facts, **({"would_refuse": found.refusal} if found.refusal else {}))
