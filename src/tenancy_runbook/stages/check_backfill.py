"""30_check_backfill: the seed's datahub:check-workspace, and more, for the spec's tables.

NULLs per table, duplicates on each unique key, and every tenant value agreeing with the
backfill rule (each table by its derivation). Read-only.
"""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import checks, db, spec
from . import preflight

READ_ONLY = True    # its notebook connects read-only: it writes nothing

# The rule_mismatches condition of a table, by its derivation.
MISMATCH = {"user": "check_backfill/mismatch_user", "parent": "check_backfill/mismatch_parent",
            "parent_else_user": "check_backfill/mismatch_parent_else_user"}
# The tenants a user belongs to (a row of a from-user table may hold any of them), by the rule's kind.
BELONGS = {"default_else_owner": "check_backfill/belongs_default_else_owner", "sql": "check_backfill/belongs_sql"}
SQL = checks.SQL + ("check_backfill/duplicates", "check_backfill/rule_mismatches", "common/user_workspace",
                    "common/user_workspace_sql") + tuple(BELONGS.values()) + tuple(MISMATCH.values())


def success(s: spec.Spec | None = None) -> str:
    """The gate's last line when it passed: the seed review's expected output, in the spec's names
    (Data Hub: "PASSED: All Data Hub workspaceId values are backfilled (no NULLs)."; plain text, no
    emoji a PDF font may lack)."""
    s = s or spec.active()
    return f"PASSED: All {s.title} {s.tenant.name} values are backfilled (no NULLs)."


def null_counts(conn: psycopg.Connection) -> pd.DataFrame:
    checks.require_columns(conn, "30_check_backfill")
    return checks.null_counts(conn)


def duplicates(conn: psycopg.Connection) -> pd.DataFrame:
    """Rows sharing a value of a unique key of the spec: the frame of preflight.collisions (table,
    index, the key's columns, rows, ids with the winner first) without ``user_ids``."""
    s = spec.active()
    return checks.per_unique_key(
        lambda key: db.frame(conn, "check_backfill/duplicates", table=key.table, key=s.table(key.table).key,
                             columns=list(key.columns), winner=preflight.winner(key)),
        ["rows", "ids"])


def duplicates_by_value(dups: pd.DataFrame, conn: psycopg.Connection) -> pd.DataFrame:
    """For the chart: duplicate groups per value of the unique key's other column (Data Hub: per
    provider), zeros included. The first column is the one to plot by."""
    return checks.per_provider(conn, dups, groups=("rows", "size"))


def rule_mismatches(conn: psycopg.Connection) -> pd.DataFrame:
    """Per table of the spec, the rows whose tenant disagrees with the backfill rule (NULLs not
    counted): from the user, the rule's tenant or one the user belongs to (a member of, or their
    default; a rule of kind sql knows no other tenant of a user than its own: exactly it); from
    the parent, the parent row's; parent_else_user, the parent's when the parent column is set,
    else as user."""
    s = spec.active()
    params, names = preflight.rule(s)
    names["belongs"] = (db.fragment(BELONGS["sql"]) if s.user_rule.kind == "sql"
                        else db.fragment(BELONGS["default_else_owner"], **s.rule_identifiers()))
    out = []
    for t in s.tables:
        condition = {"table": t.name, "tenant": s.tenant.name}
        if t.uses_user:
            condition["user"] = t.user_column
        if t.uses_parent:
            condition |= {"parent": t.parent_table, "parent_key": s.table(t.parent_table).key,
                          "column": t.parent_column}
        found = db.one(conn, "check_backfill/rule_mismatches", params, **names, table=t.name,
                       mismatch=db.load_sql(MISMATCH[t.derivation], **condition))
        out.append({"table": t.name, "mismatches": found["mismatches"]})
    return pd.DataFrame(out, columns=["table", "mismatches"])


def problems(nulls: pd.DataFrame, dups: pd.DataFrame, mismatches: pd.DataFrame) -> list[str]:
    """What is wrong, each with what to do; empty when the backfill is complete and right."""
    s = spec.active()
    out = []
    if nulls["nulls"].sum():
        out.append(checks.null_message(nulls))
    for key in s.unique_keys:
        found = dups[dups["table"] == key.table] if len(dups) else dups
        if len(found):
            out.append(f"{len(found)} duplicate ({', '.join(key.columns)}) value(s) in {key.table}: "
                       + "; ".join(f"({', '.join(str(r[c]) for c in key.columns)}): {', '.join(r['ids'])}"
                                   for r in found.head(20).to_dict("records"))
                       + f". Keep one {key.table} row per ({', '.join(key.columns)}).")
    bad = mismatches[mismatches["mismatches"] > 0]
    if len(bad):
        out.append(f"{s.tenant.name} disagrees with the backfill rule: "
                   + ", ".join(f"{r.table}: {r.mismatches}" for r in bad.itertuples())
                   + ". See sql/check_backfill/rule_mismatches.sql for the rule per table; "
                   "fix those rows (set them to NULL and re-run 20_backfill) before enforcing.")
    return out
