"""tenancy-runbook: the command line. It only parses arguments and reports."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__, archive, control, db, runbook, runner
from .db import redact
from .errors import RunbookError
from .report import print_stage, report, say_anchor, say_next


VALUE_MARK = "\x00"   # keeps a -p value such as -1s from being read as an option


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(_mark_values(sys.argv[1:] if argv is None else argv))
    if hasattr(args, "parameter"):
        args.parameter = [[part.removeprefix(VALUE_MARK) for part in pair] for pair in args.parameter]
    try:
        return args.handler(args)
    except RunbookError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _mark_values(argv: list[str]) -> list[str]:
    """``-p NAME VALUE`` (and ``control set NAME VALUE``): a VALUE starting with '-'
    (``-p batch_statement_timeout -1s``) is a value, so that its check can say what is wrong
    with it, not argparse "expected 2 arguments"."""
    out = list(argv)
    for i, token in enumerate(out[:-2]):
        is_set = token == "set" and i > 0 and out[i - 1] == "control"
        if (token in ("-p", "--parameter") or is_set) and out[i + 2].startswith("-"):
            out[i + 2] = VALUE_MARK + out[i + 2]
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenancy-runbook", description=(
        "Run a tenancy migration, declared in its runbook's spec (docs/spec.md; Data Hub's: "
        "runbooks/datahub.spec.yaml), as a papermill runbook. "
        "The database comes from the DATABASE_URL environment variable."))
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="execute a runbook's stages in order")
    run.add_argument("runbook", type=Path, help="runbook file, e.g. runbooks/datahub-tenancy.yaml")
    run.add_argument("--run-dir", type=Path, help="where to write the executed notebooks "
                     "(default: outputs/<UTC timestamp>-<short id>/)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="set a parameter for every stage that declares it")
    run.add_argument("--from", dest="start", metavar="STAGE", help="first stage to run (notebook stem)")
    run.add_argument("--to", dest="stop", metavar="STAGE", help="last stage to run (notebook stem)")
    run.add_argument("--sign-key", type=Path, metavar="PATH", help="sign manifest.json with this private "
                     "SSH key (ssh-keygen -Y sign, namespace tenancy-runbook): manifest.json.sig")
    run.add_argument("--junit-xml", type=Path, metavar="FILE", help="write the run as JUnit XML: one "
                     "testcase per stage, a failure carrying the failing gate's message")
    run.set_defaults(handler=_run)

    plan = sub.add_parser("plan", help="show the stages, their parameters and the SQL each runs, "
                          "without touching the database (with DATABASE_URL set: the preflight numbers too)")
    plan.add_argument("runbook", type=Path, help="runbook file, e.g. runbooks/datahub-tenancy.yaml")
    plan.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    plan.add_argument("--from", dest="start", metavar="STAGE")
    plan.add_argument("--to", dest="stop", metavar="STAGE")
    plan.add_argument("--no-sql", action="store_true", help="list the SQL files without their text")
    plan.set_defaults(handler=_plan)

    verify = sub.add_parser("verify", help="check an archived run: every artifact's hash and the chain")
    verify.add_argument("run_dir", type=Path, help="a run directory, e.g. outputs/20261125T101500Z-1a2b3c")
    verify.add_argument("--allowed-signers", type=Path, metavar="FILE", help="check manifest.json.sig against "
                        "these keys (ssh's allowed_signers format: PRINCIPAL KEYTYPE KEY per line)")
    verify.add_argument("--expect-sha256", metavar="HEX", help="the manifest's sha256 as the run printed it "
                        "(from the change ticket)")
    verify.set_defaults(handler=_verify)

    status = sub.add_parser("status", help="the running backfill's progress, per table, as it reports it "
                            "to the database (exit 0 while a run is active, 1 when none is)")
    status.set_defaults(handler=_status)

    steer = sub.add_parser("control", help="steer the running backfill: it applies the command between batches",
                           description="Leave a command for the run that holds the database (DATABASE_URL). "
                           "The backfill applies it between batches; refused (exit 1) when no run is active.")
    actions = steer.add_subparsers(required=True, dest="action", metavar="ACTION")
    actions.add_parser("pause", help="wait between batches until resume (or abort)")
    actions.add_parser("resume", help="go on after a pause")
    actions.add_parser("abort", help="stop after the current batch: the stage fails (exit 1), a re-run resumes")
    setting = actions.add_parser("set", help="change a parameter of the running backfill: "
                                 + ", ".join(control.SETTABLE))
    setting.add_argument("name", metavar="NAME", help=" | ".join(control.SETTABLE))
    setting.add_argument("value", metavar="VALUE", help="as -p takes it, e.g. 250 or 256MB")
    steer.set_defaults(handler=_control)

    from . import demo, lab
    demo.add_arguments(sub.add_parser("demo", help="run the whole runbook on a throwaway embedded "
                                      "PostgreSQL seeded with synthetic Data Hub data"))
    lab.add_arguments(sub.add_parser("lab", help="JupyterLab on the demo database (started if needed)"))
    return parser


def _run(args) -> int:
    overrides = dict(args.parameter)
    book = runbook.load(args.runbook, overrides)
    stages = book.select(args.start, args.stop)
    run_dir = args.run_dir or runner.new_run_dir()
    results = runner.run(book, stages, run_dir, on_stage=print_stage, sign_key=args.sign_key)
    code = report(results, run_dir, stages, named_run_dir=args.run_dir is not None)
    say_next(book, stages, code)
    if args.junit_xml:
        from . import junit
        print(f"JUnit XML: {junit.write(args.junit_xml, run_dir)}")
    interrupted = bool(results) and results[-1].status == "interrupted"
    say_anchor(run_dir, sys.stderr if interrupted else sys.stdout)    # after report()'s line
    if interrupted:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)   # at once: everything of the run has ended and is archived
    return code


def _plan(args) -> int:
    from . import plan
    book = runbook.load(args.runbook, dict(args.parameter))
    stages = book.select(args.start, args.stop)
    for line in plan.lines(book, stages, with_sql=not args.no_sql) + plan.preflight_numbers(book.spec):
        print(line)
    return 0


def _verify(args) -> int:
    if not args.run_dir.is_dir():
        raise RunbookError(f"{args.run_dir} is not a directory")
    notes: list[str] = []
    problems = archive.verify(args.run_dir, args.allowed_signers, args.expect_sha256, notes)
    for line in notes + problems:
        print(line)
    print(f"{args.run_dir}: " + ("intact" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def _status(args) -> int:
    url = db.database_url()
    with db.connect(url, read_only=True, statement_timeout=control.STATEMENT_TIMEOUT) as conn:
        state = control.status(conn, db.describe(url))
    for line in control.status_lines(state):
        print(line)
    return state.exit_code


def _control(args) -> int:
    name = getattr(args, "name", None)
    value = getattr(args, "value", None)
    value = value.removeprefix(VALUE_MARK) if value is not None else None
    control.check_command(args.action, name, value)          # before connecting
    url = db.database_url()
    with db.connect(url, statement_timeout=control.STATEMENT_TIMEOUT) as conn:
        sent = control.send(conn, args.action, name, value)
    for line in control.sent_lines(sent):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
