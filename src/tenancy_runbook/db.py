"""Connections and SQL files.

Every statement the runbook runs lives in a file under ``sql/``. Python only loads a
file, fills identifiers in with ``psycopg.sql.Identifier`` and binds values as
parameters. The database always comes from the ``DATABASE_URL`` environment variable,
and no message leaves this module with a password in it.

Nothing the runbook sets stays on a session: a connection in front of a pooler hands its
server connection to the application's next client. Read-only, timeouts and every other
setting are made per transaction (``BEGIN READ ONLY``, ``set_config(..., true)``), and the
runbook refuses a transaction- or statement-pooling proxy before it writes
(:func:`require_direct`).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd
import psycopg
from psycopg import pq, sql
from psycopg.rows import dict_row

from .errors import RunbookError
from .paths import SQL_DIR

ENV_VAR = "DATABASE_URL"
RUN_ID_ENV = "TENANCY_RUNBOOK_RUN_ID"   # set by the runner: its kernels' connections carry the run id
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\b(?:ssl)?password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)

# Query parameters Prisma's DATABASE_URL carries that libpq refuses ("invalid URI query
# parameter"). ``schema`` selects the schema of the application's tables; the others tune
# Prisma's own pool and TLS handling and mean nothing here.
PRISMA_ONLY = ("schema", "connection_limit", "pool_timeout", "pgbouncer", "socket_timeout",
               "statement_cache_size", "sslaccept", "sslidentity")
DEFAULT_STATEMENT_TIMEOUT = "1h"
_IDLE = pq.TransactionStatus.IDLE


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


def split_url(url: str) -> tuple[str, str | None]:
    """(a DSN libpq accepts, the schema named by ``?schema=``) for a URL as Prisma writes it.

    Prisma's own parameters are dropped; libpq's (sslmode, application_name, options, ...)
    stay. A key=value DSN is returned as it is.
    """
    parts = urlsplit(url)
    if not parts.scheme.lower().startswith("postgres") or not parts.query:
        return url, None
    kept, schema = [], None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value or None
        elif key not in PRISMA_ONLY:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def _search_path_option(schema: str) -> str:
    """``-c search_path=<schema>`` for libpq's ``options`` (spaces escaped as libpq wants)."""
    if not re.fullmatch(r"[^\x00-\x1f\\\\]+", schema):
        raise RunbookError(f"?schema={schema!r} in {ENV_VAR} is not a usable schema name")
    quoted = sql.Identifier(schema).as_string(None) if not re.fullmatch(r"[a-z_][a-z0-9_$]*", schema) else schema
    return "-c search_path=" + quoted.replace(" ", "\\ ")


def conninfo(url: str) -> str:
    """The DSN psycopg connects with: Prisma's parameters dropped, ``?schema=`` turned into the
    session's search_path (a startup parameter: it lives and dies with this connection)."""
    dsn, schema = split_url(url)
    if not schema:
        return dsn
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    options = " ".join(filter(None, [info.get("options"), _search_path_option(schema)]))
    return psycopg.conninfo.make_conninfo(dsn, options=options)


def schema_of(url: str | None = None) -> str | None:
    """The schema ``?schema=`` names, if any (None: the server's default search_path)."""
    return split_url(url or database_url())[1]


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
        info = psycopg.conninfo.conninfo_to_dict(split_url(url)[0])
    except psycopg.ProgrammingError:
        return None
    return info.get("password") or None


def describe(url: str) -> str:
    """``user@host:port/dbname`` (and the schema ``?schema=`` names) for messages: never the password."""
    dsn, schema = split_url(url)
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    user = info.get("user") or os.environ.get("PGUSER") or "<default user>"
    where = f"{user}@{host}:{port}/{info.get('dbname') or '<default db>'}"
    return where + (f" (schema {schema})" if schema else "")


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database (URL form only)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise RunbookError(f"expected a postgresql:// URL, got {describe(url)}")
    return urlunsplit(parts._replace(path="/" + dbname))


def sqlalchemy_url(url: str | None = None) -> str:
    """DATABASE_URL as SQLAlchemy wants it (psycopg 3 driver, libpq's parameters only, the
    schema as the session's search_path), for ``%sql``."""
    dsn, schema = split_url(url or database_url())
    parts = urlsplit(dsn)
    if not parts.scheme.lower().startswith("postgres"):
        raise RunbookError(f"%sql needs {ENV_VAR} as a postgresql:// URL, got {describe(dsn)}")
    if schema:
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = " ".join(filter(None, [dict(query).get("options"), _search_path_option(schema)]))
        parts = parts._replace(query=urlencode([(k, v) for k, v in query if k != "options"]
                                               + [("options", options)]))
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", urlunsplit(parts))


# --------------------------------------------------------------------------- connections
class Cursor(psycopg.Cursor):
    """Outside an explicit transaction, each statement runs in one of its own, which starts with
    the connection's settings (on an autocommit connection, a bare statement would run with the
    session's defaults: a role's statement_timeout, no READ ONLY)."""

    def execute(self, query, params=None, **kwargs):
        conn = self.connection
        if (conn.autocommit and conn.pgconn.transaction_status == _IDLE
                and not getattr(conn, "_bare", False)):
            with conn.transaction():
                return super().execute(query, params, **kwargs)
        return super().execute(query, params, **kwargs)


class Connection(psycopg.Connection):
    """A psycopg connection whose every transaction starts with the runbook's settings.

    ``settings`` (name -> value) are set with ``set_config(name, value, true)`` right after
    BEGIN, so they end with the transaction; ``read_only`` goes into the BEGIN itself. Never
    a session-level SET: behind a pooler the next client would inherit it.
    """

    settings: dict

    @contextmanager
    def transaction(self, *args, **kwargs):
        outer = self.pgconn.transaction_status == _IDLE
        with super().transaction(*args, **kwargs) as tx:
            if outer and getattr(self, "settings", None):
                _apply(self, self.settings, local=True)
            yield tx


def _apply(conn: psycopg.Connection, settings: dict, local: bool) -> None:
    with conn.cursor() as cur:
        cur.execute(load_sql("common/set_config"), {
            "names": list(settings), "values": [str(v) for v in settings.values()], "local": local})


@contextmanager
def settings(conn: Connection, **values):
    """Within the block, the connection's transactions start with these settings too
    (e.g. a DDL step's lock_timeout); afterwards, the connection's own again."""
    saved = dict(conn.settings)
    conn.settings = {**saved, **{k: v for k, v in values.items() if v is not None}}
    try:
        yield conn
    finally:
        conn.settings = saved


@contextmanager
def outside_transaction(conn: Connection):
    """For the one kind of statement that cannot run in a transaction block (``CONCURRENTLY``):
    the settings are put on the session for the block and RESET right after it. Only on a
    direct connection (the runner refuses a transaction pooler before any write)."""
    session = {**conn.settings, "default_transaction_read_only": "on" if conn.read_only else "off"}
    _apply(conn, session, local=False)
    conn._bare = True
    try:
        yield conn
    finally:
        conn._bare = False
        if not conn.closed and conn.pgconn.transaction_status == _IDLE:
            for name in session:
                execute(conn, "common/reset_setting", setting=name)


def connect(url: str | None = None, *, read_only: bool = False, statement_timeout: str | None = None,
            lock_timeout: str | None = None, connect_timeout: int = 10,
            application_name: str | None = None) -> Connection:
    """A connection to the target database, or a RunbookError naming it and what to check.

    It is in autocommit mode, and every statement the helpers below run outside an explicit
    transaction gets one of its own, so a notebook left open in JupyterLab never sits idle in
    a transaction holding locks. Each transaction is ``READ ONLY`` (``read_only``) or
    ``READ WRITE`` whatever the role's default, and sets its own timeouts: role or database
    defaults (``ALTER ROLE ... SET statement_timeout``) neither kill nor hang a stage.
    ``statement_timeout`` bounds each statement (default 1h); ``lock_timeout`` each wait for a
    lock (default: none beyond statement_timeout; DDL steps and batches set their own).
    No statement is prepared on the server: a pooler would hand it to someone else.
    """
    url = url or database_url()
    try:
        return _open(conninfo(url), read_only, {"statement_timeout": statement_timeout or DEFAULT_STATEMENT_TIMEOUT,
                                                "lock_timeout": lock_timeout or "0"},
                     **{"connect_timeout": connect_timeout, **_url_connect_timeout(url)},
                     application_name=application_name or _application_name(url))
    except RunbookError:
        raise
    except psycopg.Error as exc:
        raise RunbookError(_connect_failed(url, exc)) from None


def _open(info: str, read_only: bool, settings: dict, **kwargs) -> Connection:
    """A Connection as connect() describes it: autocommit, dict rows, the runbook's cursor, no
    server-side prepared statements; its transactions' mode and settings."""
    conn = Connection.connect(info, autocommit=True, row_factory=dict_row, cursor_factory=Cursor,
                              prepare_threshold=None, **kwargs)
    conn.read_only, conn.settings, conn._bare = bool(read_only), dict(settings), False
    return conn


def sibling(conn: Connection) -> Connection:
    """Another connection like ``conn``: same server, database, user, password, startup options
    (the schema's search_path), application_name, transaction mode and settings. For work that
    runs beside ``conn`` (a backfill's extra workers)."""
    params = conn.info.get_parameters()
    if conn.info.password:
        params["password"] = conn.info.password
    try:
        return _open(psycopg.conninfo.make_conninfo(**params), conn.read_only, conn.settings)
    except psycopg.Error as exc:
        raise RunbookError(f"cannot open another connection to {conn.info.host}/{conn.info.dbname}: "
                           f"{redact(str(exc)).strip()}. Check max_connections and the role's CONNECTION "
                           "LIMIT, or run with fewer backfill_workers.") from None


def _url_connect_timeout(url: str) -> dict:
    """A connect_timeout written in the URL wins over the default."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(split_url(url)[0])
    except psycopg.ProgrammingError:
        return {}
    return {"connect_timeout": info["connect_timeout"]} if info.get("connect_timeout") else {}


def run_application_name(run_id: str) -> str:
    """The application_name of every connection of a run's kernels: how the runner finds (and
    on a signal cancels) its own sessions. PostgreSQL keeps 63 bytes of it."""
    return f"tenancy-runbook {run_id}"[:63]


def _application_name(url: str) -> str:
    """Under the runner, "tenancy-runbook <run id>" (so the runner can find and cancel its own
    statements); otherwise the URL's application_name, else "tenancy-runbook"."""
    run_id = os.environ.get(RUN_ID_ENV)
    if run_id:
        return run_application_name(run_id)
    try:
        given = psycopg.conninfo.conninfo_to_dict(split_url(url)[0]).get("application_name")
    except psycopg.ProgrammingError:
        given = None
    return given or "tenancy-runbook"


def _connect_failed(url: str, exc: Exception) -> str:
    text = redact(str(exc)).strip()
    if "unsupported startup parameter" in text:
        return (f"cannot connect to {describe(url)}: {text}. A connection pooler (such as PgBouncer) "
                "answers on that address and refuses the session's startup parameters. "
                + POOLER_ADVICE)
    return (f"cannot connect to {describe(url)}: {text}. Check that the server is up and that "
            f"{ENV_VAR} names the right host, port, database and user.")


# --------------------------------------------------------------------------- poolers
POOLER_ADVICE = (f"The runbook needs a direct connection to PostgreSQL: point {ENV_VAR} at the "
                 "server itself, not at a transaction or statement pooler (as Prisma's directUrl "
                 "does for migrations), then run again. Nothing was changed.")


PROBE_SQL = ("common/backend",)     # what require_direct runs


def require_direct(url: str | None = None) -> dict:
    """Refuse (RunbookError, exit 2) a transaction- or statement-pooling proxy; what was seen.

    Two client connections are opened. On a direct connection (or a session pooler) each keeps
    its server backend for life. A transaction pooler hands the first one's backend to the
    second as soon as the first one's transaction ends (PgBouncer reuses the most recently
    released server connection first), and may move the first one to another backend; a
    statement pooler refuses a transaction block outright. Only SELECTs run: nothing is set.
    """
    url = url or database_url()
    seen = {"proxy": False, "pooling": None}
    with connect(url, read_only=True) as first, connect(url, read_only=True) as second:
        try:
            with first.transaction():
                before = one(first, "common/backend")
            with second.transaction():
                other = one(second, "common/backend")
                with first.transaction():
                    after = one(first, "common/backend")
        except psycopg.Error as exc:
            if "pooling mode" in str(exc) or "transaction blocks not allowed" in str(exc):
                raise RunbookError(f"{describe(url)} is a statement-pooling proxy ({redact(str(exc)).strip()}). "
                                   + POOLER_ADVICE) from None
            raise
        dialled = first.info.port
        seen["proxy"] = bool(dialled and before["port"] and int(before["port"]) != int(dialled))
        if after["pid"] != before["pid"] or other["pid"] == before["pid"]:
            seen["pooling"] = "transaction"
            raise RunbookError(
                f"{describe(url)} is a transaction-pooling proxy: one client connection was served "
                f"by server backends {before['pid']} and {after['pid']}, and backend {before['pid']} "
                f"served another client in between (server port {before['port']}, dialled {dialled}). "
                "Session settings, advisory locks and the runbook's own steps cannot be kept on it. "
                + POOLER_ADVICE)
    return seen


# --------------------------------------------------------------------------- SQL files
def load_sql(name: str, /, **identifiers) -> sql.Composable:
    """The statement in ``sql/<name>.sql``, with ``{placeholders}`` filled by identifiers.

    A placeholder's value is a name (``"Connection"``), a qualified name as a tuple
    (``("datahub_quarantine", "Connection")``) or a list of names (a column list).
    """
    text = with_includes(_read_sql(name))
    if not identifiers:
        return sql.SQL(text)
    return sql.SQL(text).format(**{k: _identifier(v) for k, v in identifiers.items()})


def fragment(name: str, /, **identifiers) -> sql.Composable:
    """A part of a statement in ``sql/<name>.sql`` (an expression another statement places in a
    ``{placeholder}`` of its own), its comment lines left out and its own placeholders filled."""
    text = _without_comments(_read_sql(name)).strip()
    return sql.SQL(text).format(**{k: _identifier(v) for k, v in identifiers.items()})


INCLUDE = re.compile(r"\{include ([\w/]+)\}")   # {include common/runbook_schema}: that file's text


def _read_sql(name: str) -> str:
    path = SQL_DIR / (name if name.endswith(".sql") else f"{name}.sql")
    try:
        return path.read_text()
    except FileNotFoundError:
        raise RunbookError(f"SQL file {path} is missing: the checkout is incomplete.") from None


def with_includes(text: str) -> str:
    """Put the text of every ``{include <name>}`` (a file under sql/, one level deep) in its place,
    its comment lines left out, so one rule is written once and read by several statements (a
    SQL file outside sql/ too: the tests' second app seeds its users as Data Hub does)."""
    def body(match: re.Match) -> str:
        included = _read_sql(match.group(1))
        if INCLUDE.search(included):
            raise RunbookError(f"sql/{match.group(1)}.sql includes another file: one level only.")
        return _without_comments(included)
    return INCLUDE.sub(body, text)


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def subquery_text(path: Path) -> str:
    """A SQL file from outside sql/ (a spec's rule: one SELECT, trusted text from the spec's author)
    ready to stand as a subquery: its comment lines and a trailing ``;`` left out. A template
    places it on lines of its own, so a comment ending its last line cannot swallow the ``)``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RunbookError(f"cannot read the rule's SQL file {path}: {exc.strerror}. "
                           "The tenancy spec's user_rule.sql names it.") from None
    return _without_comments(text).strip().rstrip(";").rstrip()


def _identifier(value) -> sql.Composable:
    if isinstance(value, sql.Composable):      # a keyword the caller checked (a type, UNIQUE, an action)
        return value
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
