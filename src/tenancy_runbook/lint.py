"""squawk, the PostgreSQL migration linter, over the DDL the runbook applies.

The runbook's statements are rendered as the scripts a session runs: every DDL statement of
the stage in order, identifiers filled in, each in its own transaction that sets its own
timeouts (the runbook uses set_config(..., true); rendered here as the equivalent SET LOCAL),
the CONCURRENTLY ones outside a transaction with the session's timeouts set and RESET around them. Prisma's plain migration.sql
files are linted beside them, to show what the online versions avoid.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from . import db, spec
from .errors import RunbookError
from .stages import add_workspace_columns, enforce_not_null


def _statement(name: str, lock_timeout: str, statement_timeout: str, **identifiers) -> str:
    """A statement the runbook runs in its own transaction (locks.run_ddl), rendered with the
    timeouts that transaction sets for itself (set_config(..., true) is SET LOCAL)."""
    return "\n".join(["BEGIN;", f"SET LOCAL lock_timeout = '{lock_timeout}';",
                      f"SET LOCAL statement_timeout = '{statement_timeout}';",
                      _sql(name, **identifiers), "COMMIT;"])


def _bare(name: str, statement_timeout: str, **identifiers) -> str:
    """A statement that cannot run in a transaction (CONCURRENTLY): its settings are put on the
    session just for it, then RESET (db.outside_transaction)."""
    return "\n".join(["SET lock_timeout = '0';", f"SET statement_timeout = '{statement_timeout}';",
                      _sql(name, **identifiers), "RESET lock_timeout;", "RESET statement_timeout;"])


def _sql(name: str, **identifiers) -> str:
    return db.load_sql(name, **identifiers).as_string(None).strip().rstrip(";") + ";"


def runbook_scripts(lock_timeout: str = "500ms", statement_timeout: str = "1h") -> dict[str, str]:
    """{label: SQL script} of the DDL the runbook applies, as it applies it. Steps whose lock
    queues no writer (CONCURRENTLY, VALIDATE) wait without a lock_timeout (locks.run_ddl)."""
    short = dict(lock_timeout=lock_timeout, statement_timeout=statement_timeout)
    patient = dict(lock_timeout="0", statement_timeout=statement_timeout)
    m1 = []
    s = spec.active()
    for found in add_workspace_columns.objects(s):
        for step in add_workspace_columns.steps(s, *found):
            if step.statement == "add_workspace_columns/create_index":
                m1.append(_bare(step.statement, statement_timeout, **step.identifiers))
            else:
                timeouts = patient if step.statement == "common/validate_constraint" else short
                m1.append(_statement(step.statement, **step.identifiers, **timeouts))
    m2 = []
    column = s.tenant.name
    for t in s.table_names:
        check = enforce_not_null.check_name(t)
        m2 += [_statement("enforce_not_null/add_check", table=t, constraint=check, column=column, **short),
               _statement("common/validate_constraint", table=t, constraint=check, **patient),
               _statement("enforce_not_null/set_not_null", table=t, column=column, **short),
               _statement("enforce_not_null/drop_check", table=t, constraint=check, **short)]
    return {f"runbook: {add_workspace_columns.migration().name}": "\n".join(m1) + "\n",
            f"runbook: {enforce_not_null.migration().name}": "\n".join(m2) + "\n"}


def prisma_scripts() -> dict[str, str]:
    """{label: SQL} of Prisma's plain migrations, as the seed review would apply them."""
    m1, m2 = add_workspace_columns.migration(), enforce_not_null.migration()
    return {f"prisma (plain): {m1.name}": m1.sql.read_text(), f"prisma (plain): {m2.name}": m2.sql.read_text()}


def squawk_binary() -> str:
    found = shutil.which("squawk") or shutil.which("squawk", path=str(Path(sys.executable).parent))
    if not found:
        raise RunbookError("squawk is not installed: pip install squawk-cli (the package depends on it)")
    return found


def run(scripts: dict[str, str], pg_version: str = "15") -> pd.DataFrame:
    """squawk's findings for each script: one row per finding (line numbers 1-based)."""
    binary = squawk_binary()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tenancy-runbook-squawk-") as tmp:
        for index, (label, text) in enumerate(scripts.items()):
            path = Path(tmp) / f"{index}.sql"
            path.write_text(text)
            proc = subprocess.run([binary, f"--pg-version={pg_version}", "--reporter", "json", str(path)],
                                  capture_output=True, text=True, timeout=60)
            try:
                findings = json.loads(proc.stdout or "[]")
            except ValueError:
                raise RunbookError(f"squawk failed on {label}: {proc.stderr.strip() or proc.stdout[:200]}") from None
            lines = text.splitlines()
            for f in findings:
                line = int(f.get("line", 0))
                rows.append({"script": label, "line": line + 1, "rule": f.get("rule_name"),
                             "level": f.get("level"), "message": f.get("message"),
                             "statement": lines[line].strip()[:120] if line < len(lines) else ""})
    return pd.DataFrame(rows, columns=["script", "line", "rule", "level", "message", "statement"])


def by_rule(runbook: pd.DataFrame, prisma: pd.DataFrame) -> pd.DataFrame:
    """Findings per squawk rule: the runbook's statements beside Prisma's plain ones."""
    rules = sorted(set(runbook["rule"]) | set(prisma["rule"]))
    return pd.DataFrame({"rule": rules,
                         "runbook": [int((runbook["rule"] == r).sum()) for r in rules],
                         "prisma_plain": [int((prisma["rule"] == r).sum()) for r in rules]})


def problems(runbook: pd.DataFrame) -> list[str]:
    if runbook.empty:
        return []
    return ["squawk flags the runbook's own DDL: " + "; ".join(
        f"{r.script} line {r.line}: {r.rule} ({r.message})" for r in runbook.itertuples())
        + ". Fix the statement in sql/ (or justify it with a squawk-ignore comment there)."]
