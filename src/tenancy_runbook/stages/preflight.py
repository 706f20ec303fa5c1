"""00_preflight: what the database is, what state it is in, and whether the backfill can succeed.

Read-only. The gates stop the runbook before any write when the role lacks a privilege the run
will need (printing the GRANT statements that fix it) or when the backfill cannot succeed.
"""

from __future__ import annotations

import pandas as pd
import psycopg

from .. import DATAHUB_TABLES, TENANT_TABLES, checks, db
from . import add_workspace_columns

READ_ONLY = True    # its notebook connects read-only: it writes nothing
SQL = checks.SQL + ("preflight/server", "add_workspace_columns/detect", "preflight/privileges",
                    "preflight/collisions", "common/user_workspace", "preflight/unplaceable_users",
                    "preflight/user_emails")
# The tables the run reads but does not own: the backfill rule and the checks read them; the
# foreign keys reference Workspace.
READ_TABLES = ("User", "WorkspaceMember", "Workspace")


def server(conn: psycopg.Connection) -> dict:
    return db.one(conn, "preflight/server")


def tables(conn: psycopg.Connection) -> pd.DataFrame:
    """Every Data Hub table the migration reads or writes, and whether it exists."""
    states = checks.column_state(conn, DATAHUB_TABLES)
    return states[["table", "table_present"]].rename(columns={"table_present": "present"})


def missing_tables(table_frame: pd.DataFrame) -> list[str]:
    return table_frame.loc[~table_frame["present"], "table"].tolist()


def privileges(conn: psycopg.Connection, on_collision: str = "fail",
               on_orphan: str = "fail") -> pd.DataFrame:
    """Every privilege the run will need, and the optional ones: object, privilege, held,
    optional, the statement that gives it (``grant``) and what needs it.

    What is already done is not asked for again: CREATE on the tables' schema only while an
    index of migration 1 is still to be built, REFERENCES on Workspace only while a foreign key
    is still to be added; datahub_quarantine only when a parameter says to quarantine.
    """
    state = add_workspace_columns.detect(conn)
    todo = {"build_indexes": bool(((state["kind"] == "index") & ~state["complete"]).any()),
            "add_foreign_keys": bool(((state["kind"] == "foreign key") & ~state["present"]).any())}
    return db.frame(conn, "preflight/privileges",
                    {"tenant": list(TENANT_TABLES), "read": list(READ_TABLES),
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
    """Rows, NULL workspaceIds and the column's state for each of the four tables."""
    return checks.null_counts(conn)


def collisions(conn: psycopg.Connection) -> pd.DataFrame:
    """(workspaceId, provider) pairs the backfill would give to more than one connection."""
    return db.frame(conn, "preflight/collisions")


def collisions_by_provider(collision_frame: pd.DataFrame, conn: psycopg.Connection) -> pd.DataFrame:
    """For the chart: colliding pairs and connections involved, per provider (zeros included)."""
    return checks.per_provider(conn, collision_frame, colliding_pairs=("connections", "size"),
                               connections=("connections", "sum"))


def unplaceable_users(conn: psycopg.Connection, show_personal_data: bool = False) -> pd.DataFrame:
    """Orphan and ambiguous users who own rows that still need a workspaceId, named by id.

    Their e-mail address (an ``email`` column after ``userId``) only with ``show_personal_data``,
    for an interactive session: a runbook run's notebooks, HTML and manifest are archived and
    its terminal output goes into CI logs, so by default no personal field is even read.
    """
    found = db.frame(conn, "preflight/unplaceable_users")
    if show_personal_data is not True:
        return found
    emails = db.frame(conn, "preflight/user_emails", {"ids": found["userId"].tolist()})
    found.insert(1, "email", found["userId"].map(dict(zip(emails["userId"], emails["email"]))))
    return found


def problems(collision_frame: pd.DataFrame, unplaced: pd.DataFrame, limit: int = 20,
             on_collision: str = "fail", on_orphan: str = "fail") -> list[str]:
    """Why the backfill cannot succeed, each with what to do; empty when it can.

    With on_collision / on_orphan = 'quarantine' those rows are no obstacle: 20_backfill
    moves them to datahub_quarantine (the notebook lists them). Users are named by id; by
    e-mail too only when ``unplaced`` holds it (unplaceable_users with show_personal_data).
    """
    out = []
    if len(collision_frame) and on_collision != "quarantine":
        pairs = "; ".join(f"({r.workspaceId}, {r.provider}): {_some(r.connection_ids, limit)}"
                          for r in collision_frame.head(limit).itertuples())
        out.append(
            f"{len(collision_frame)} (workspaceId, provider) collision(s) over "
            f"{int(collision_frame['connections'].sum())} connections: the unique index "
            f"Connection_workspaceId_provider_key would reject them mid-backfill. {pairs}. "
            "Decide which connection each workspace keeps (merge or delete the others, with "
            "their MetricDaily and Insight rows), then run the runbook again; or run with "
            "-p on_collision quarantine to keep the most recently updated one and quarantine the rest.")
    if len(unplaced) and on_orphan != "quarantine":
        rows = int(unplaced[["connections", "metric_rows", "insights", "chat_messages"]].sum().sum())
        email = "email" in unplaced.columns
        users = "; ".join(f"{r.userId}" + (f" <{r.email}>" if email else "")
                          + f" ({r.kind}, owns {r.owned_workspaces})" for r in unplaced.head(limit).itertuples())
        out.append(
            f"{len(unplaced)} user(s) the backfill rule cannot place own {rows} rows: {users}. "
            "Set User.defaultWorkspaceId for each (or make them OWNER of exactly one "
            "workspace), then run the runbook again; or run with -p on_orphan quarantine to "
            "move their rows to datahub_quarantine.")
    return out


def _some(items: list, limit: int) -> str:
    """The first ``limit`` items, and how many more."""
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")
