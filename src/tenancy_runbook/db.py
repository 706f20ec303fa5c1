"""Connections and SQL files.

Every statement the runbook runs lives in a file under ``sql/``. Python only loads a
file, fills identifiers in with ``psycopg.sql.Identifier`` and binds values as
parameters. The database always comes from the ``DATABASE_URL`` environment variable,
and no message leaves this module with a password in it.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .errors import RunbookError
from .paths import SQL_DIR

ENV_VAR = "DATABASE_URL"
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)


# --------------------------------------------------------------------------- DSNs
def database_url() -> str:
    """The DSN from DATABASE_URL, or a RunbookError that says how to set it."""
    url = os.environ.get(ENV_VAR, "").strip()
    if not url:
        raise RunbookError(
            f"{ENV_VAR} is not set. Export the target database first, e.g. "
            f"export {ENV_VAR}=postgresql://USER@HOST:5432/DBNAME "
            "(keep a password in ~/.pgpass or PGPASSWORD, not on the command line)."
        )
    return url


def redact(text: str) -> str:
    """``text`` with every password in a URL or a key=value DSN replaced by ``***``."""
    text = str(text)
    secrets = [_password_of(os.environ.get(ENV_VAR) or ""), os.environ.get("PGPASSWORD")]
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(lambda m: m["head"] + ("***" if m["pw"] else "") + m["tail"], text)
    return _KV_PASSWORD.sub(lambda m: m["head"] + "***", text)


def _password_of(url: str) -> str | None:
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return None
    return info.get("password") or None


def describe(url: str) -> str:
    """``user@host:port/dbname`` for messages: never the password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    user = info.get("user") or os.environ.get("PGUSER") or "<default user>"
    return f"{user}@{host}:{port}/{info.get('dbname') or '<default db>'}"


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database (URL form only)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise RunbookError(f"expected a postgresql:// URL, got {describe(url)}")
    return urlunsplit(parts._replace(path="/" + dbname))


def sqlalchemy_url(url: str | None = None) -> str:
    """DATABASE_URL as SQLAlchemy wants it (psycopg 3 driver), for ``%sql``."""
    url = url or database_url()
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


def connect(url: str | None = None, *, read_only: bool = False,
            connect_timeout: int = 10) -> psycopg.Connection:
    """A connection to the target database, or a RunbookError naming it and what to check.

    It is in autocommit mode: stages open their transactions explicitly and keep them short,
    so a notebook left open in JupyterLab never sits idle in a transaction holding locks.
    ``read_only`` makes the whole session read-only (default_transaction_read_only).
    """
    url = url or database_url()
    try:
        conn = psycopg.connect(url, autocommit=True, row_factory=dict_row,
                               connect_timeout=connect_timeout, application_name="tenancy-runbook")
    except psycopg.Error as exc:
        raise RunbookError(
            f"cannot connect to {describe(url)}: {redact(str(exc)).strip()}. "
            f"Check that the server is up and that {ENV_VAR} names the right host, port, "
            "database and user."
        ) from None
    if read_only:
        execute(conn, "common/read_only_session")
    return conn


# --------------------------------------------------------------------------- SQL files
def load_sql(name: str, /, **identifiers) -> sql.Composable:
    """The statement in ``sql/<name>.sql``, with ``{placeholders}`` filled by identifiers.

    A placeholder's value is a name (``"Connection"``), a qualified name as a tuple
    (``("datahub_quarantine", "Connection")``) or a list of names (a column list).
    """
    text = _include(_read_sql(name))
    if not identifiers:
        return sql.SQL(text)
    return sql.SQL(text).format(**{k: _identifier(v) for k, v in identifiers.items()})


INCLUDE = re.compile(r"\{include ([\w/]+)\}")   # {include common/user_workspace}: that file's text


def _read_sql(name: str) -> str:
    path = SQL_DIR / (name if name.endswith(".sql") else f"{name}.sql")
    try:
        return path.read_text()
    except FileNotFoundError:
        raise RunbookError(f"SQL file {path} is missing: the checkout is incomplete.") from None


def _include(text: str) -> str:
    """Put the text of every ``{include <name>}`` (a file under sql/, one level deep) in its place,
    its comment lines left out, so one rule is written once and read by several statements."""
    def body(match: re.Match) -> str:
        included = _read_sql(match.group(1))
        if INCLUDE.search(included):
            raise RunbookError(f"sql/{match.group(1)}.sql includes another file: one level only.")
        return "\n".join(line for line in included.splitlines() if not line.lstrip().startswith("--"))
    return INCLUDE.sub(body, text)


def _identifier(value) -> sql.Composable:
    if isinstance(value, tuple):
        return sql.Identifier(*value)
    if isinstance(value, list):
        return sql.SQL(", ").join(sql.Identifier(v) for v in value)
    return sql.Identifier(value)


def rows(conn: psycopg.Connection, name: str, params: dict | None = None, /, **identifiers) -> list[dict]:
    """All rows of the query in ``sql/<name>.sql`` as dicts."""
    with conn.cursor() as cur:
        cur.execute(load_sql(name, **identifiers), params)
        return cur.fetchall() if cur.description else []


def one(conn: psycopg.Connection, name: str, params: dict | None = None, /, **identifiers) -> dict:
    """The single row of the query in ``sql/<name>.sql``."""
    result = rows(conn, name, params, **identifiers)
    if len(result) != 1:
        raise RuntimeError(f"sql/{name}.sql returned {len(result)} rows, expected one")
    return result[0]


def frame(conn: psycopg.Connection, name: str, params: dict | None = None, /, **identifiers) -> pd.DataFrame:
    """The query in ``sql/<name>.sql`` as a DataFrame (columns kept when it returns no row)."""
    with conn.cursor() as cur:
        cur.execute(load_sql(name, **identifiers), params)
        columns = [d.name for d in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def execute(conn: psycopg.Connection, name: str, params: dict | None = None, /, **identifiers) -> int:
    """Run ``sql/<name>.sql``; the number of rows it touched."""
    with conn.cursor() as cur:
        cur.execute(load_sql(name, **identifiers), params)
        return cur.rowcount
