"""What a runbook will do, before it does it: stages, parameters, the SQL each runs.

Touches no database, unless DATABASE_URL is set: then the preflight numbers too (read-only).
"""

from __future__ import annotations

import os

from . import db, interactive, params, spec, stages as stage_modules
from .paths import ROOT, SQL_DIR
from .runbook import Runbook, Stage


def parameters(stage: Stage) -> list[str]:
    """name = value for every parameter (the runbook's or -p's, else the declared default),
    then what params.py allows for it."""
    out = []
    for name in stage.declared:
        param = params.get(name)
        if name == "run_id":
            value = "<set by the runner>"
        elif name == "confirm" and interactive.confirm_outside_runner_only(stage.name) and name not in stage.parameters:
            value = "not needed under the runner (a stage run on its own writes only with confirm=True)"
        elif name in stage.parameters:
            value = repr(stage.parameters[name])
        else:
            value = f"{param.default!r} (default)"
        out.append(f"{name} = {value}    [{param.allowed(short=True)}]")
    return out


def lines(book: Runbook, stages: list[Stage], with_sql: bool = True) -> list[str]:
    out = [f"runbook {book.path} (sha256 {book.sha256}): {len(stages)} stage(s)",
           f"(each parameter: its value, then [what it allows]; a duration is {params.DURATION_RULES})", ""]
    for stage in stages:
        module = stage_modules.module(stage.name)
        kind = "read-only" if stage_modules.read_only(stage.name) else "writes"
        out.append(f"{stage.name}  ({kind}; notebook {stage.notebook.relative_to(ROOT)})")
        out += [f"  {p}" for p in parameters(stage)]
        out.append("  SQL it runs:")
        for name in dict.fromkeys(module.SQL):
            path = SQL_DIR / f"{name}.sql"
            out.append(f"    sql/{name}.sql")
            if with_sql:
                out += [f"      | {line}" for line in path.read_text().rstrip().splitlines()]
        out.append("")
    return out


def preflight_numbers(book_spec: spec.Spec | None = None) -> list[str]:
    """With DATABASE_URL set: the numbers 00_preflight will show (read-only), by the runbook's
    tenancy spec (``book_spec``; None: the active one)."""
    with spec.using(book_spec):
        return _preflight_numbers()


def _preflight_numbers() -> list[str]:
    if not os.environ.get(db.ENV_VAR):
        return ["DATABASE_URL is not set: no preflight numbers (set it to see them)."]
    from .stages import preflight

    s = spec.active()
    url = db.database_url()
    with db.connect(url, read_only=True) as conn:
        missing = preflight.missing_tables(preflight.tables(conn))
        if missing:
            return [f"{db.describe(url)}: not a database of the tenancy spec {s.name!r} (missing {', '.join(missing)})"]
        counts = preflight.counts(conn)
        collisions = preflight.collisions(conn)
        unplaced = preflight.unplaceable_users(conn)
        server = preflight.server(conn)
    out = [f"preflight numbers for {db.describe(url)} (PostgreSQL {server['server_version']}, spec {s.name!r}):"]
    out += [f"  {r.table:<12} rows {r.rows:>12,}  NULL {s.tenant.name} {r.nulls:>12,}  column {r.column}"
            for r in counts.itertuples()]
    for key in s.unique_keys:
        groups = collisions[collisions["table"] == key.table] if len(collisions) else collisions
        out.append(f"  projected {key.table} ({', '.join(key.columns)}) collisions: {len(groups)}"
                   + (f" over {int(groups['rows'].sum())} rows" if len(groups) else ""))
    out.append(f"  users the backfill rule cannot place (with rows to migrate): {len(unplaced)}")
    return out
