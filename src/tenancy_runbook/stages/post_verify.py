"""50_post_verify: the seed's verification queries, as assertions. Read-only.

What is expected comes from the tenancy spec (spec.active()): its tenant column NOT NULL on
every table, each index of migration 1 present and valid (a unique one unique), each table's
foreign key present and validated, and no NULL left.
"""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import checks, db, spec

READ_ONLY = True    # its notebook connects read-only: it writes nothing
SQL = checks.SQL + ("post_verify/columns", "post_verify/indexes", "post_verify/foreign_keys")


def columns(conn: psycopg.Connection) -> pd.DataFrame:
    """The tenant column of each table of the spec: table, column, is_nullable."""
    s = spec.active()
    return db.frame(conn, "post_verify/columns", {"tables": list(s.table_names), "column": s.tenant.name})


def indexes(conn: psycopg.Connection, unique_index: str = "") -> pd.DataFrame:
    """Migration 1's indexes (the spec's), and ``unique_index`` when the spec does not declare it:
    index_name, table, expected_unique, present, indisunique, indisvalid, indisready, definition."""
    expected = [(i.name, i.table, i.unique) for i in spec.active().indexes]
    if unique_index and unique_index not in [name for name, _, _ in expected]:
        expected.append((unique_index, None, True))
    names, tables, unique = (list(x) for x in zip(*expected)) if expected else ([], [], [])
    return db.frame(conn, "post_verify/indexes", {"names": names, "tables": tables, "unique": unique})


def foreign_keys(conn: psycopg.Connection) -> pd.DataFrame:
    """Each table's foreign key on the tenant column (the spec's names): present and validated."""
    tables = spec.active().tables
    return db.frame(conn, "post_verify/foreign_keys", {"tables": [t.name for t in tables],
                                                       "names": [t.foreign_key for t in tables]})


def summary(cols: pd.DataFrame, index: pd.DataFrame, fks: pd.DataFrame, nulls: pd.DataFrame) -> pd.DataFrame:
    """One row per check: what was expected, what was found, ok or not. ``index``: indexes()."""
    s = spec.active()
    column = s.tenant.name
    nullable = dict(zip(cols["table"], cols["is_nullable"], strict=True))
    rows = [(f"{t}.{column} is_nullable", "NO", nullable.get(t, "absent")) for t in s.table_names]
    rows += [_index_check(r) for r in index.itertuples()]
    rows += [(f"{r.constraint_name} present and validated", "yes",
              "yes" if r.present and r.validated else "missing" if not r.present else "not validated")
             for r in fks.itertuples()]
    rows += [(f"{r.table} NULL {column}", "0", str(r.nulls)) for r in nulls.itertuples()]
    out = pd.DataFrame(rows, columns=["check", "expected", "found"])
    out["ok"] = out["expected"] == out["found"]
    return out


def _index_check(r) -> tuple[str, str, str]:
    """(check, expected, found) for one row of indexes()."""
    if not r.present:
        found = "missing"
    elif r.indisvalid and r.indisready and (r.indisunique or not r.expected_unique):
        found = "yes"
    elif r.expected_unique:
        found = f"unique={r.indisunique} valid={r.indisvalid} ready={r.indisready}"
    else:
        found = f"valid={r.indisvalid} ready={r.indisready}"
    return f"{r.index_name} exists, {'unique and ' if r.expected_unique else ''}valid", "yes", found


def problems(table: pd.DataFrame) -> list[str]:
    bad = table[~table["ok"]]
    if not len(bad):
        return []
    return [f"{r.check}: expected {r.expected}, found {r.found}" for r in bad.itertuples()] + [
        "Run the runbook again from the first failing stage (the runner's --from); "
        "an INVALID index must be dropped and created again."]


def null_counts(conn: psycopg.Connection) -> pd.DataFrame:
    checks.require_columns(conn, "50_post_verify")
    return checks.null_counts(conn)
