"""Rows that cannot be migrated are kept, restorable, in the tenancy spec's quarantine schema.

One table per source table, same name and columns, plus ``reason``, ``run_id`` and
``quarantined_at``. A move is one statement (DELETE ... RETURNING feeding an INSERT), so a
row is always either live or in quarantine, never both, never neither, whatever stops the
run. Dependent rows go first, leaves first (a collision loser's children, grandchildren ...,
by the spec's chains), then the row itself, so no foreign key action (CASCADE, SET NULL)
touches them on the way.
"""

from __future__ import annotations

import re

import pandas as pd
import psycopg
from psycopg import sql

from . import db, spec
from .errors import GateFailed

SQL = ("quarantine/present", "quarantine/columns", "quarantine/schema_present", "quarantine/create_schema",
       "quarantine/ensure_table", "quarantine/move_by_id", "quarantine/move_under", "quarantine/below",
       "quarantine/given", "quarantine/move_unplaced", "quarantine/summary", "quarantine/restore_conflicts",
       "quarantine/unique_indexes", "quarantine/restore_conflicts_unique", "quarantine/restoring",
       "quarantine/restore", "quarantine/workspace_nullable")

CHUNK = 5000          # rows per move transaction


def schema() -> str:
    """The quarantine schema of this run's spec."""
    return spec.active().quarantine_schema


def restore_order(s: spec.Spec | None = None) -> tuple[str, ...]:
    """The order rows go back in: the spec's dependency order (a parent before its children)."""
    return (s or spec.active()).table_names


def quarantine_order(s: spec.Spec | None = None) -> tuple[str, ...]:
    """The order rows are moved in: dependents first, the deepest first (a child is always deeper
    than its parent), equals in reverse dependency order. Data Hub: Insight, MetricDaily,
    ChatMessage, Connection; projects: Attachment, Comment, Task, Label, Project."""
    s = s or spec.active()
    tables = list(reversed(s.table_names))
    return tuple(sorted(tables, key=lambda t: -len(s.chain(t))))


def __getattr__(name: str):
    """SCHEMA, QUARANTINE_ORDER and RESTORE_ORDER as before the spec: the active spec's."""
    found = {"SCHEMA": schema, "QUARANTINE_ORDER": quarantine_order, "RESTORE_ORDER": restore_order}.get(name)
    if found is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return found()


def below(s: spec.Spec, name: str) -> list[tuple[str, list[spec.Hop]]]:
    """Each table whose rows hang below a row of ``name`` (its chain passes through it), with the
    hops from it up to ``name``, leaves first (quarantine_order)."""
    out = []
    for table in quarantine_order(s):
        hops = s.chain(table)
        up = next((i for i, hop in enumerate(hops) if hop.parent == name), None)
        if up is not None:
            out.append((table, hops[:up + 1]))
    return out


def columns(conn: psycopg.Connection, table: str, schema: str | None = None) -> list[str]:
    return [r["column"] for r in db.rows(conn, "quarantine/columns", {"schema": schema, "table": table})]


def ensure_table(conn: psycopg.Connection, table: str) -> list[str]:
    """Create <quarantine schema>.<table> if needed; the source columns both share."""
    s = spec.active()
    where = s.quarantine_schema
    with conn.transaction():
        if not db.one(conn, "quarantine/schema_present", {"schema": where})["present"]:
            db.execute(conn, "quarantine/create_schema", schema=where)
        db.execute(conn, "quarantine/ensure_table", table=table, quarantine=(where, table))
    source, kept = columns(conn, table), columns(conn, table, where)
    missing = [c for c in source if c not in kept]
    if missing:
        raise GateFailed(f"{where}.{table} lacks column(s) {', '.join(missing)} of {table}; it was "
                         "created for an older schema. Add them to it, then run again.")
    if s.tenant.name in kept:
        with conn.transaction():
            db.execute(conn, "quarantine/workspace_nullable", quarantine=(where, table), column=s.tenant.name)
    return source


def _move(conn, statement: str, table: str, params: dict, cols: list[str], **identifiers) -> int:
    with conn.transaction():
        return db.execute(conn, statement, params, table=table, quarantine=(schema(), table), columns=cols,
                          **identifiers)


def _under(s: spec.Spec, hops: list[spec.Hop]) -> sql.Composable:
    """The keys of the rows of hops[0].child's parent that hang below the given ids (%(ids)s of
    the table hops[-1].parent), one nested SELECT per hop above the first."""
    under = db.load_sql("quarantine/given")
    for hop in reversed(hops[1:]):
        under = db.load_sql("quarantine/below", table=hop.child, key=s.table(hop.child).key,
                            column=hop.column, under=under)
    return under


def move_rows(conn: psycopg.Connection, table: str, ids: list[str], reason: str, run_id: str) -> dict:
    """Move rows of ``table`` by key, and first every row below them through any chain depth,
    leaves first. Rows moved per table (every table of the spec)."""
    s = spec.active()
    moved = {t: 0 for t in s.table_names}
    if not ids:
        return moved
    params = {"ids": ids, "reason": reason, "run_id": run_id}
    for child, hops in below(s, table):
        cols = ensure_table(conn, child)
        while n := _move(conn, "quarantine/move_under", child, {**params, "limit": CHUNK}, cols,
                         key=s.table(child).key, column=hops[0].column, under=_under(s, hops)):
            moved[child] += n
    cols = ensure_table(conn, table)
    moved[table] = _move(conn, "quarantine/move_by_id", table, params, cols, key=s.table(table).key)
    return moved


def collisions(conn: psycopg.Connection, collision_frame: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """For each colliding group of a unique key (preflight.collisions), keep the first row by the
    key's winner and quarantine the others with every row below them. One row per group: table,
    index, the key's columns, kept, moved, and ``<table>_moved`` per table below it."""
    s = spec.active()
    out, names = [], ["table", "index"]
    for key in s.unique_keys:
        groups = collision_frame[collision_frame["table"] == key.table] if len(collision_frame) else []
        names += [c for c in key.columns if c not in names]
        extra = [f"{child}_moved" for child, _ in below(s, key.table)]
        names += [c for c in ["kept", "moved"] + extra if c not in names]
        for r in (groups.to_dict("records") if len(groups) else []):
            kept, losers = r["ids"][0], list(r["ids"][1:])
            values = ", ".join(str(r[c]) for c in key.columns)
            reason = (f"collision on ({', '.join(key.columns)}) = ({values}): kept {kept}, "
                      f"the first by {winner_words(key)}")
            moved = move_rows(conn, key.table, losers, reason, run_id)
            out.append({"table": key.table, "index": key.index, **{c: r[c] for c in key.columns},
                        "kept": kept, "moved": ", ".join(losers),
                        **{f"{child}_moved": moved[child] for child, _ in below(s, key.table)}})
    return pd.DataFrame(out, columns=names)


def winner_words(key: spec.UniqueKey) -> str:
    """A unique key's winner order, as a message says it: ``updatedAt desc, id``."""
    return ", ".join(f"{w.column} desc" if w.descending else w.column for w in key.winner)


def unplaced(conn: psycopg.Connection, run_id: str) -> pd.DataFrame:
    """Move every row still without a tenant (the backfill could not place it), leaves first."""
    s = spec.active()
    why = ("the rule's SELECT gives its user none" if s.user_rule.kind == "sql"
           else "its user has no default and is owner of none or several (orphan or ambiguous)")
    reason = f"no {s.tenant.table} by the backfill rule: {why}, or its parent row has none"
    out = []
    for table in quarantine_order(s):
        cols = ensure_table(conn, table)
        total = 0
        while n := _move(conn, "quarantine/move_unplaced", table, {"limit": CHUNK, "reason": reason,
                                                                    "run_id": run_id},
                         cols, key=s.table(table).key, tenant=s.tenant.name):
            total += n
        out.append({"table": table, "rows_moved": total})
    return pd.DataFrame(out, columns=["table", "rows_moved"])


def _present(conn: psycopg.Connection) -> list[str]:
    """The spec's tables that have a quarantine table, in restore order."""
    where = schema()
    return [t for t in restore_order() if db.one(conn, "quarantine/present", {"schema": where, "table": t})["present"]]


def summary(conn: psycopg.Connection) -> pd.DataFrame:
    """What the quarantine holds: rows per table, run and reason."""
    frames = [db.frame(conn, "quarantine/summary", {"table": t}, quarantine=(schema(), t)) for t in _present(conn)]
    frames = [f for f in frames if len(f)]
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=["table", "run_id", "reason", "rows"]))


def restore_conflicts(conn: psycopg.Connection, table: str, run_id: str = "") -> list[str]:
    """Why quarantined rows of ``table`` cannot go back: their key is live again, or a live row
    holds the same value of one of the table's unique indexes (its old per-user key, its
    tenant-scoped key, any other). One line per conflict."""
    key, where = spec.active().table(table).key, (schema(), table)
    found = db.rows(conn, "quarantine/restore_conflicts", {"run_id": run_id}, table=table, quarantine=where, key=key)
    for index in db.rows(conn, "quarantine/unique_indexes", {"table": table}):
        cols = index["columns"]
        found += db.rows(conn, "quarantine/restore_conflicts_unique",
                         {"run_id": run_id, "row": table.lower(), "what": ", ".join(cols)},
                         table=table, quarantine=where, key=key,
                         live=sql.SQL(", ").join(sql.Identifier("l", c) for c in cols),
                         kept=sql.SQL(", ").join(sql.Identifier("q", c) for c in cols))
    return [f"{table} {r['id']}: {r['problem']}" for r in found]


def restore(conn: psycopg.Connection, run_id: str = "") -> pd.DataFrame:
    """Put quarantined rows back exactly as they were (all, or one run's), in dependency order;
    rows per table. Refuses, restoring nothing, when a row would break a constraint, naming the rows.
    """
    present = _present(conn)
    conflicts = [line for table in present for line in restore_conflicts(conn, table, run_id)]
    if conflicts:
        raise GateFailed(f"Restore refused, nothing was restored: {len(conflicts)} quarantined row(s) "
                         "would break a constraint: " + "; ".join(conflicts[:20])
                         + ". Delete or change the live rows in the way (or restore another run_id).")
    out = []
    try:
        with conn.transaction():
            db.execute(conn, "quarantine/restoring")
            for table in present:
                cols = columns(conn, table)
                n = db.execute(conn, "quarantine/restore", {"run_id": run_id},
                               table=table, quarantine=(schema(), table), columns=cols)
                out.append({"table": table, "rows_restored": n})
    except psycopg.errors.IntegrityError as exc:
        diag = exc.diag
        raise GateFailed(f"Restore refused, nothing was restored: {diag.message_primary} "
                         f"({diag.constraint_name or 'constraint'}; {_detail(diag)}). "
                         "Make room for that row (or roll back NOT NULL first), then run again.") from None
    return pd.DataFrame(out, columns=["table", "rows_restored"])


def shown_keys(s: spec.Spec | None = None) -> set[str]:
    """Columns whose values a message may show: the spec's keys, tenant, parent and user columns
    and unique keys' columns (ids and the like), never a personal field."""
    s = s or spec.active()
    names = {s.tenant.name} | {c for k in s.unique_keys for c in k.columns}
    for t in s.tables:
        names |= {c for c in (t.key, t.user_column, t.parent_column) if c}
    return names


_KEY = re.compile(r'Key \((?P<columns>[^)]*)\)=')


def _detail(diag) -> str:
    """The server's DETAIL when it names only such key columns (``Key (userId, provider)=(...)``).
    Anything else ("Failing row contains (...)": every column of the row, an access token, a chat
    message) is not shown: the message reaches the notebook, the terminal and the manifest."""
    detail = diag.message_detail or ""
    key = _KEY.match(detail)
    if key and {c.strip().strip('"') for c in key["columns"].split(",")} <= shown_keys():
        return detail
    return (f"a row of {diag.table_name or 'the table'}" + (f", column {diag.column_name}" if diag.column_name else "")
            + "; its values are not shown")
