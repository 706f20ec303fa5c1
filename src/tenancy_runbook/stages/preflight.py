"""00_preflight: what the database is, what state it is in, and whether the backfill can succeed.

Read-only. The gates stop the runbook before any write when the role lacks a privilege the run
will need (printing the GRANT statements that fix it) or when the backfill cannot succeed.
"""

from __future__ import annotations

import pandas as pd
import psycopg
from psycopg import sql

from .. import checks, db, placement, quarantine, spec
from . import add_workspace_columns

READ_ONLY = True    # its notebook connects read-only: it writes nothing
# A table's rows with their projected tenant, and its rows still without one, by derivation.
PROJECTED = {"user": "preflight/projected_user", "parent": "preflight/projected_parent",
             "parent_else_user": "preflight/projected_parent_else_user"}
OWNED = {"user": "preflight/owned_user", "parent": "preflight/owned_parent",
         "parent_else_user": "preflight/owned_parent_else_user"}
# Who the rule cannot place, and why, by the rule's kind.
UNPLACED = {"default_else_owner": "preflight/unplaced_default_else_owner", "sql": "preflight/unplaced_sql"}
SQL = checks.SQL + ("preflight/server", "add_workspace_columns/detect", "preflight/privileges",
                    "preflight/collisions", "common/user_workspace", "common/user_workspace_sql",
                    "preflight/unplaceable_users", "preflight/unplaceable_count", "preflight/owned_users",
                    "preflight/user_emails", "preflight/rule_duplicates", "preflight/key_types") \
    + tuple(UNPLACED.values()) + tuple(PROJECTED.values()) + tuple(OWNED.values())


def read_tables(s: spec.Spec | None = None) -> tuple[str, ...]:
    """The tables the run reads but does not own, the tenant table last (the foreign keys reference
    it): before it, a default_else_owner rule's user and membership tables (the rule and the checks
    read them). A rule of kind sql declares none: the tables its file reads are its author's."""
    s = s or spec.active()
    if s.user_rule.kind == "sql":
        return (s.tenant.table,)
    names = s.rule_identifiers()
    return (names["users"], names["members"], s.tenant.table)


def rule(s: spec.Spec) -> tuple[dict, dict]:
    """(the parameters, the identifiers) of a statement whose CTE user_workspace is the rule as a
    set ({user_workspace}: placement.rule_set)."""
    return ({**placement.rule_params(s), "tenant": s.tenant.name},
            {"user_workspace": placement.rule_set(s)})


def winner(key: spec.UniqueKey) -> sql.Composable:
    """A unique key's winner as an ORDER BY list (the spec allows only asc and desc)."""
    return sql.SQL(", ").join(sql.Composed([sql.Identifier(w.column), sql.SQL(" DESC")]) if w.descending
                              else sql.Identifier(w.column) for w in key.winner)


def _by_derivation(s: spec.Spec, name: str, statements: dict) -> sql.Composable:
    """The statement for table ``name`` by its derivation, its parent's (the same kind of
    statement) nested in it, up the whole chain."""
    t = s.table(name)
    identifiers = {"table": t.name, "key": t.key}
    if t.uses_user:
        identifiers["user"] = t.user_column
    if t.uses_parent:
        identifiers |= {"column": t.parent_column, "parent": _by_derivation(s, t.parent_table, statements)}
    return db.load_sql(statements[t.derivation], **identifiers)


def server(conn: psycopg.Connection) -> dict:
    return db.one(conn, "preflight/server")


def tables(conn: psycopg.Connection) -> pd.DataFrame:
    """Every table the migration reads or writes (the tenant table, the rule's, then the spec's
    tables), and whether it exists."""
    s = spec.active()
    read = read_tables(s)
    states = checks.column_state(conn, (read[-1], *read[:-1], *s.table_names))
    return states[["table", "table_present"]].rename(columns={"table_present": "present"})


def missing_tables(table_frame: pd.DataFrame) -> list[str]:
    return table_frame.loc[~table_frame["present"], "table"].tolist()


def key_types(conn: psycopg.Connection) -> pd.DataFrame:
    """Every column whose values the run handles as text (sql/preflight/key_types.sql): table,
    column, what it is to the run, its type in the database and whether the runbook supports it
    (text or varchar)."""
    s = spec.active()
    wanted = [(s.tenant.table, s.tenant.key, "the tenant key")]
    if s.user_rule.kind != "sql":     # a rule of kind sql: its file's columns are its author's
        n = s.rule_identifiers()
        wanted += [(n["users"], n["user_key"], "the user key"),
                   (n["users"], n["default_tenant"], "the user's default tenant"),
                   (n["members"], n["member_user"], "the membership's user"),
                   (n["members"], n["member_tenant"], "the membership's tenant")]
    for t in s.tables:
        wanted.append((t.name, t.key, "its key"))
        if t.uses_user:
            wanted.append((t.name, t.user_column, "its user"))
        if t.uses_parent:
            wanted.append((t.name, t.parent_column, f"its parent in {t.parent_table}"))
        wanted.append((t.name, s.tenant.name, "the tenant column"))
    tables, columns, whats = (list(x) for x in zip(*wanted))
    return db.frame(conn, "preflight/key_types", {"tables": tables, "columns": columns, "whats": whats})


def unsupported_types(type_frame: pd.DataFrame) -> str:
    """The refusal for columns of a type the runbook does not handle yet ('' when there is none)."""
    bad = type_frame[~type_frame["supported"].astype(bool)]
    if bad.empty:
        return ""
    found = "; ".join(f"{r.table}.{r.column} ({r.what}) is {r.type}" for r in bad.itertuples())
    return (f"Keys of a type the runbook does not handle yet: {found}. Today it handles keys, user "
            "and tenant ids of type text or varchar (Prisma's String ids): the guard's function, the "
            "second pass by key and the quarantine compare them with text values, which fails for a "
            "uuid or integer column partway through the run, or in the application's own writes "
            "through the guard (docs/spec.md, Limits today). Nothing was changed.")


def privileges(conn: psycopg.Connection, on_collision: str = "fail",
               on_orphan: str = "fail") -> pd.DataFrame:
    """Every privilege the run will need, and the optional ones: object, privilege, held,
    optional, the statement that gives it (``grant``) and what needs it.

    What is already done is not asked for again: CREATE on the tables' schema only while an
    index of migration 1 is still to be built, REFERENCES on the tenant table only while a foreign
    key is still to be added; the quarantine schema only when a parameter says to quarantine.
    """
    state = add_workspace_columns.detect(conn)
    todo = {"build_indexes": bool(((state["kind"] == "index") & ~state["complete"]).any()),
            "add_foreign_keys": bool(((state["kind"] == "foreign key") & ~state["present"]).any())}
    s = spec.active()
    return db.frame(conn, "preflight/privileges",
                    {"tenant": list(s.table_names), "read": list(read_tables()),
                     "tenant_table": s.tenant.table, "tenant_column": s.tenant.name,
                     "quarantine_schema": s.quarantine_schema,
                     "quarantine": "quarantine" in (on_collision, on_orphan), **todo})


def grants(privilege_frame: pd.DataFrame, optional: bool = False) -> list[str]:
    """The statements that give the role what it lacks (the required privileges, or the
    optional ones), each once, in the table's order."""
    return list(dict.fromkeys(_lacking(privilege_frame, optional)["grant"]))


def _lacking(privilege_frame: pd.DataFrame, optional: bool) -> pd.DataFrame:
    return privilege_frame[~privilege_frame["held"].astype(bool)
                           & (privilege_frame["optional"].astype(bool) == optional)]


def privilege_problems(privilege_frame: pd.DataFrame, role: str) -> list[str]:
    """What the role lacks, and the GRANT statements that fix it, one per line; empty when it
    holds every required privilege."""
    lacking = _lacking(privilege_frame, optional=False)
    if not len(lacking):
        return []
    what = "; ".join(f"{r.privilege} on {r.object}" if not r.privilege.startswith("owner")
                     else f"{r.privilege} of {r.object}" for r in lacking.itertuples())
    return [f"The role {role} lacks {len(lacking)} privilege(s) the run will need: {what}. "
            "Run these statements as a superuser (or the objects' owner), then run the runbook again:\n"
            + "\n".join(grants(privilege_frame))]


def optional_note(privilege_frame: pd.DataFrame) -> str:
    """One line per optional privilege the role lacks (the run goes on without it)."""
    lacking = _lacking(privilege_frame, optional=True)
    if not len(lacking):
        return "Every optional privilege is held too."
    return "\n".join(["Optional, not held (the run goes on without):"]
                     + [f"  {r.grant}  -- {r.needed_for.removeprefix('optional: ')}"
                        for r in lacking.itertuples()])


def counts(conn: psycopg.Connection) -> pd.DataFrame:
    """Rows, NULL tenant values and the column's state for each of the spec's tables."""
    return checks.null_counts(conn)


def collisions(conn: psycopg.Connection) -> pd.DataFrame:
    """The values of each unique key of the spec that the backfill would give to more than one
    row (a row that has a tenant keeps it; the others are projected by their table's derivation,
    through any chain depth). One frame for every key: ``table``, ``index`` (the unique index),
    the key's columns (the tenant column holding the projected value; a column of another key's
    table is NaN), ``rows`` (how many share it), ``ids`` (those rows' keys, the key's winner
    first: the one kept) and ``user_ids`` (the users whose rule places them)."""
    s = spec.active()
    params, names = rule(s)

    def found_for(key: spec.UniqueKey) -> pd.DataFrame:
        group = ["row_tenant" if c == s.tenant.name else c for c in key.columns]
        found = db.frame(conn, "preflight/collisions", params, **names, group=group, winner=winner(key),
                         projected=_by_derivation(s, key.table, PROJECTED))
        return found.rename(columns={"row_tenant": s.tenant.name})

    return checks.per_unique_key(found_for, ["rows", "ids", "user_ids"])


def collisions_by_value(collision_frame: pd.DataFrame, conn: psycopg.Connection) -> pd.DataFrame:
    """For the chart: colliding groups and the rows in them, per value of the unique key's other
    column (Data Hub: per provider; zeros included). The first column is the one to plot by."""
    return checks.per_provider(conn, collision_frame, groups=("rows", "size"), rows=("rows", "sum"))


def unplaceable_users(conn: psycopg.Connection, show_personal_data: bool = False) -> pd.DataFrame:
    """Users the rule cannot place who own rows that still need a tenant, named by id: ``user_id``,
    ``kind`` (default_else_owner: orphan, ambiguous; sql: 'no tenant by the rule'),
    ``owned_tenants`` (how many they are owner of; NULL for a rule of kind sql, which knows no
    owner), then one column per table of the spec, named after it, holding the rows of that
    table that would stay NULL because of them (through any chain depth: a row whose parent's
    parent is theirs).

    Their e-mail address (an ``email`` column after ``user_id``) only with ``show_personal_data``,
    for an interactive session: a runbook run's notebooks, HTML and manifest are archived and
    its terminal output goes into CI logs, so by default no personal field is even read. A rule
    of kind sql declares no user table: no e-mail address then.
    """
    s = spec.active()
    params, names = rule(s)
    owned = {t: _by_derivation(s, t, OWNED) for t in s.table_names}
    counts = sql.SQL(", ").join(db.load_sql("preflight/unplaceable_count", table=t, owned=o)
                                for t, o in owned.items())
    if s.user_rule.kind == "sql":
        unplaced = db.fragment(UNPLACED["sql"], users=sql.SQL("\nUNION ALL\n").join(
            db.fragment("preflight/owned_users", owned=o) for o in owned.values()))
    else:
        unplaced = db.fragment(UNPLACED["default_else_owner"], **s.rule_identifiers())
    found = db.frame(conn, "preflight/unplaceable_users", params, **names, unplaced=unplaced, counts=counts,
                     total=sql.SQL(" + ").join(sql.Identifier(t) for t in s.table_names))
    if show_personal_data is not True or s.user_rule.kind == "sql":
        return found
    users = s.rule_identifiers()
    emails = db.frame(conn, "preflight/user_emails", {"ids": found["user_id"].tolist()},
                      users=users["users"], user_key=users["user_key"])
    found.insert(1, "email", found["user_id"].map(dict(zip(emails["user_id"], emails["email"]))))
    return found


def rule_problems(conn: psycopg.Connection, limit: int = 20) -> list[str]:
    """The spec's user rule gives some user more than one row (only a rule of kind sql can): what
    to fix, naming the users and the tenants it gives them; empty when it gives at most one."""
    s = spec.active()
    if s.user_rule.kind != "sql":
        return []
    params, names = rule(s)
    found = db.rows(conn, "preflight/rule_duplicates", params, **names)
    if not found:
        return []
    users = _some([f"{r['user_id']} ({r['rule_rows']} rows: {', '.join(map(str, r['tenants']))})"
                   for r in found], limit, sep="; ")
    return [f"The rule's SELECT ({s.user_rule.sql}) gives {len(found)} user(s) more than one row: "
            f"{users}. It must give each user at most one (user_id, tenant_id); make it pick one "
            "(or none, for a user it should not place), then run the runbook again."]


def unplaceable_rows(unplaced: pd.DataFrame) -> dict[str, int]:
    """{table: rows that would stay NULL} for the spec's tables, from unplaceable_users(); zeros
    for an empty frame."""
    return {t: int(unplaced[t].sum()) if len(unplaced) else 0 for t in spec.active().table_names}


def problems(collision_frame: pd.DataFrame, unplaced: pd.DataFrame, limit: int = 20,
             on_collision: str = "fail", on_orphan: str = "fail") -> list[str]:
    """Why the backfill cannot succeed, each with what to do; empty when it can.

    With on_collision / on_orphan = 'quarantine' those rows are no obstacle: 20_backfill
    moves them to the quarantine schema (the notebook lists them). Users are named by id; by
    e-mail too only when ``unplaced`` holds it (unplaceable_users with show_personal_data).
    """
    s = spec.active()
    out = []
    if len(collision_frame) and on_collision != "quarantine":
        out += [_collision_problem(s, key, found, limit) for key in s.unique_keys
                if len(found := collision_frame[collision_frame["table"] == key.table])]
    if len(unplaced) and on_orphan != "quarantine":
        rows = sum(unplaceable_rows(unplaced).values())
        email = "email" in unplaced.columns
        by_sql = s.user_rule.kind == "sql"
        users = "; ".join(f"{r['user_id']}" + (f" <{r['email']}>" if email else "")
                          + (f" ({r['kind']})" if by_sql else f" ({r['kind']}, owns {r['owned_tenants']})")
                          for r in unplaced.head(limit).to_dict("records"))
        out.append(f"{len(unplaced)} user(s) the backfill rule cannot place own {rows} rows: {users}. "
                   f"{_placing_advice(s)}, then run the runbook again; or run with -p on_orphan quarantine "
                   f"to move their rows to {s.quarantine_schema}.")
    return out


def _placing_advice(s: spec.Spec) -> str:
    """What gives an unplaceable user a tenant, by the rule's kind."""
    if s.user_rule.kind == "sql":
        return (f"Make the rule's SELECT ({s.user_rule.sql.name}) give each of them one row with a "
                f"{s.tenant.table} (user_id, tenant_id), or give them one in the data it reads")
    names = s.rule_identifiers()
    return (f"Set {names['users']}.{names['default_tenant']} for each (or make them "
            f"{s.user_rule.membership.owner} of exactly one {s.tenant.table})")


def _collision_problem(s: spec.Spec, key: spec.UniqueKey, found: pd.DataFrame, limit: int) -> str:
    columns = ", ".join(key.columns)
    groups = "; ".join(f"({', '.join(str(r[c]) for c in key.columns)}): {_some(r['ids'], limit)}"
                       for r in found.head(limit).to_dict("records"))
    under = {table for table, _ in quarantine.below(s, key.table)}
    below = [table for table in s.table_names if table in under]
    rows = f", with their {' and '.join(below)} rows" if below else ""
    return (f"{len(found)} ({columns}) collision(s) over {int(found['rows'].sum())} {key.table} rows: the "
            f"unique index {key.index} would reject them mid-backfill. {groups}. Decide which {key.table} "
            f"row each {s.tenant.table} keeps (merge or delete the others{rows}), then run the runbook "
            f"again; or run with -p on_collision quarantine to keep the first by "
            f"{quarantine.winner_words(key)} and quarantine the rest.")


def _some(items: list, limit: int, sep: str = ", ") -> str:
    """The first ``limit`` items, and how many more."""
    shown = sep.join(map(str, items[:limit]))
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")
