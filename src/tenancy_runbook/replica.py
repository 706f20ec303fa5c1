"""A throwaway streaming replica of a running PostgreSQL server, for the tests and the benchmark.

    with replica.start_replica(primary_url) as standby:
        standby.pause()          # pg_wal_replay_pause(): the primary's replay lag grows
        ...
        standby.resume()         # pg_wal_replay_resume(): it drains

It is a second cluster made with ``pg_basebackup -R -X stream --checkpoint=fast`` by the primary
server's own binaries (found from the server process itself: the embedded wheel's ``bin/`` or
Debian's ``/usr/lib/postgresql/15/bin``), run as the OS user that owns the primary's data
directory (``pgserver`` for the embedded server, ``postgres`` for Debian's; PostgreSQL refuses to
run as root). It listens on a unix socket in a directory of its own only (no TCP port).

The primary must be on this machine (its data directory and its process are read), allow
replication (``wal_level`` replica, ``max_wal_senders`` > 0) and accept a replication connection
from this user. When its pg_hba.conf has no ``replication`` line for it (Debian's PostgreSQL 15
here: ``host all all 127.0.0.1/32 trust`` does not cover replication), one line is added at the
top with the authentication method the file already gives this user for ordinary connections from
there, marked with the replica's name, and removed again by :meth:`Replica.stop`.

No replication slot is made (pg_basebackup's own temporary slot ends with the backup): a paused
replica still receives and keeps the WAL itself, so nothing is retained on the primary once the
replica is gone. A process killed by SIGKILL leaves its replica running; every start first stops
and deletes the replicas (and removes the pg_hba.conf lines) whose owning process is gone.
Statements here are the helper's own, not the runbook's: they live in this file.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .embedded import BASE, _alive, stale_homes

HBA_MARK = "# tenancy-runbook replica"
# The settings a hot standby must have at least as high as its primary's.
AT_LEAST_PRIMARY = ("max_connections", "max_worker_processes", "max_wal_senders",
                    "max_prepared_transactions", "max_locks_per_transaction")


class ReplicaError(RuntimeError):
    """Making or stopping the replica failed; the message has the program's output."""


class ReplicaUnavailable(ReplicaError):
    """This server cannot have a replica made from here (not on this machine, replication not
    allowed and not allowable); the message says why. Tests skip with it, never on a ReplicaError."""


@dataclass
class Replica:
    url: str                  # postgresql://USER@/postgres?host=<socket dir>
    name: str                 # its application_name in the primary's pg_stat_replication
    home: Path
    primary_url: str
    _bin: Path = field(repr=False)
    _user: str | None = field(repr=False)
    _hba: tuple[Path, str, str] | None = field(default=None, repr=False)   # (file, line, primary url)
    stopped: bool = False

    # ---------------------------------------------------------------- replay
    def pause(self) -> None:
        """Stop replaying WAL (it is still received): the primary sees the replay lag grow."""
        self._execute("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self._execute("SELECT pg_wal_replay_resume()")

    def paused(self) -> bool:
        return self._execute("SELECT pg_is_wal_replay_paused()")[0]

    def lag_bytes(self) -> int | None:
        """Bytes the primary's current WAL position is ahead of this replica's replay (read on
        the primary), or None while it is not connected."""
        with psycopg.connect(self.primary_url, autocommit=True) as conn:
            row = conn.execute("""SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint
                                  FROM pg_stat_replication WHERE application_name = %s""",
                               (self.name,)).fetchone()
        return row[0] if row else None

    def _execute(self, statement: str):
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            return conn.execute(statement).fetchone()

    # ---------------------------------------------------------------- life
    def stop(self) -> None:
        """Stop the replica, delete its data directory, remove the pg_hba.conf line it added."""
        if self.stopped:
            return
        self.stopped = True
        try:
            _stop_cluster(self._bin, self.home / "data", self._user)
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
            if self._hba:
                hba_file, line, primary_url = self._hba
                _remove_hba_lines(hba_file, lambda text: text == line)
                _reload(primary_url)

    def __enter__(self) -> "Replica":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_replica(primary_url: str, timeout: float = 120.0) -> Replica:
    """A streaming replica of the server of ``primary_url`` (a superuser's URL), connected and
    streaming; ReplicaUnavailable saying why when this server cannot have one here."""
    cleanup_stale()
    primary = _inspect(primary_url)
    if os.access(primary["hba_file"], os.W_OK) and cleanup_stale_hba(primary["hba_file"]):
        _reload(primary_url)
    BASE.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="replica-", dir=BASE))
    name = f"trb_replica_{uuid.uuid4().hex[:8]}"
    replica = Replica(url=_socket_url(home, primary["user"]), name=name, home=home,
                      primary_url=primary_url, _bin=primary["bin"], _user=primary["os_user"])
    try:
        home.chmod(0o755)
        (home / "owner.pid").write_text(str(os.getpid()))
        if primary["os_user"]:
            account = pwd.getpwnam(primary["os_user"])
            os.chown(home, account.pw_uid, account.pw_gid)
        _base_backup(replica, primary, timeout)
        _configure(replica, primary)
        _run(replica, "pg_ctl", "-D", str(home / "data"), "-l", str(home / "server.log"), "-w",
             "-t", str(int(timeout)), "start", timeout=timeout + 10)
        _wait_streaming(replica, timeout)
    except BaseException:
        replica.stop()
        raise
    return replica


# --------------------------------------------------------------------------- the primary
def _proc_link(pid: int, name: str) -> Path | None:
    """/proc/<pid>/<name> (cwd, exe) of a process of this machine; None when not readable."""
    try:
        return Path(os.readlink(f"/proc/{pid}/{name}"))
    except OSError:
        return None


def _inspect(primary_url: str) -> dict:
    """What making a replica of this server takes: its binaries, data directory, OS user, settings."""
    try:
        with psycopg.connect(primary_url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("""
                SELECT current_user, pg_backend_pid(), current_setting('data_directory'),
                       current_setting('hba_file'), current_setting('wal_level'),
                       current_setting('max_wal_senders')::int, current_setting('server_version_num')::int,
                       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)
                """).fetchone()
            at_least = dict(conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(AT_LEAST_PRIMARY),)).fetchall())
            bindir = conn.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()
            # while connected: the backend's working directory is its data directory when the
            # server is this machine's (closed, the backend may be gone before we look)
            local = _proc_link(row[1], "cwd") == Path(row[2]).resolve()
            exe = _proc_link(row[1], "exe")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ReplicaUnavailable(f"making a replica needs a superuser's URL: {exc}".strip()) from None
    user, pid, data_dir, hba_file, wal_level, senders, version, can_replicate = row
    if wal_level not in ("replica", "logical") or senders < 1:
        raise ReplicaUnavailable(f"the server has wal_level = {wal_level}, max_wal_senders = {senders}: "
                                 "streaming replication needs wal_level replica and max_wal_senders > 0")
    if not can_replicate:
        raise ReplicaUnavailable(f"the role {user} has no REPLICATION attribute")
    data = Path(data_dir)
    if not local:
        raise ReplicaUnavailable(f"the server (data directory {data}) does not run on this machine")
    bin_dir = _bin_dir(exe, bindir[0] if bindir else None, version)
    owner = pwd.getpwuid(data.stat().st_uid).pw_name
    os_user = owner if os.geteuid() == 0 else None     # not root: the server runs as we do
    info = psycopg.conninfo.conninfo_to_dict(primary_url)
    return {"user": user, "bin": bin_dir, "os_user": os_user, "hba_file": Path(hba_file),
            "at_least": at_least, "version": version,
            "conninfo": {k: v for k, v in info.items()
                         if k in ("host", "hostaddr", "port", "user", "password", "sslmode")}}


def _bin_dir(backend_exe: Path | None, compiled_bindir: str | None, version: int) -> Path:
    """The directory of the running server's own binaries (the backend's executable, else the
    BINDIR it was built with, else Debian's layout)."""
    candidates = [backend_exe.parent] if backend_exe else []
    if compiled_bindir:
        candidates.append(Path(compiled_bindir))
    candidates.append(Path(f"/usr/lib/postgresql/{version // 10000}/bin"))
    for candidate in candidates:
        if (candidate / "pg_basebackup").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise ReplicaUnavailable("cannot find the server's pg_basebackup and pg_ctl (looked in "
                             + ", ".join(map(str, candidates)) + ")")


def _socket_url(home: Path, user: str) -> str:
    return f"postgresql://{user}@/postgres?host={home}"


# --------------------------------------------------------------------------- making it
def _base_backup(replica: Replica, primary: dict, timeout: float) -> None:
    conninfo = psycopg.conninfo.make_conninfo(**primary["conninfo"], application_name=replica.name)
    args = ("pg_basebackup", "-D", str(replica.home / "data"), "-R", "-X", "stream",
            "--checkpoint=fast", "--no-sync", "-d", conninfo)
    try:
        _run(replica, *args, timeout=timeout)
    except ReplicaError as exc:
        if "pg_hba.conf" not in str(exc) or "replication" not in str(exc):
            raise
        replica._hba = _allow_replication(primary, replica.name)
        shutil.rmtree(replica.home / "data", ignore_errors=True)
        for attempt in range(20):     # the reload is asynchronous
            try:
                _run(replica, *args, timeout=timeout)
                return
            except ReplicaError as retry:
                if "pg_hba.conf" not in str(retry) or attempt == 19:
                    raise
                shutil.rmtree(replica.home / "data", ignore_errors=True)
                time.sleep(0.25)


def _configure(replica: Replica, primary: dict) -> None:
    """Its own socket, no TCP, its own pg_hba.conf; replay reported to the primary every second.
    Appended to postgresql.auto.conf (after pg_basebackup's primary_conninfo; read last, so
    nothing the primary set with ALTER SYSTEM overrides it)."""
    data = replica.home / "data"
    settings = {
        "listen_addresses": "", "port": "5432", "unix_socket_directories": str(replica.home),
        "hot_standby": "on", "wal_receiver_status_interval": "1s", "hot_standby_feedback": "off",
        "cluster_name": replica.name, "shared_buffers": "32MB", "logging_collector": "off",
        "hba_file": str(data / "pg_hba.conf"), "ident_file": str(data / "pg_ident.conf"),
        "archive_mode": "off", "ssl": "off",
        **primary["at_least"],
    }
    auto = data / "postgresql.auto.conf"
    text = auto.read_text() + "".join(f"{k} = '{v}'\n" for k, v in settings.items())
    files = {auto: text, data / "pg_hba.conf": "local all all trust\n", data / "pg_ident.conf": ""}
    if not (data / "postgresql.conf").exists():     # Debian keeps it in /etc/postgresql, not copied
        files[data / "postgresql.conf"] = "# a throwaway replica: its settings are in postgresql.auto.conf\n"
    for path, content in files.items():
        path.write_text(content)
        if replica._user:
            account = pwd.getpwnam(replica._user)
            os.chown(path, account.pw_uid, account.pw_gid)
        path.chmod(0o600)


def _wait_streaming(replica: Replica, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(replica.primary_url, autocommit=True) as conn:
            row = conn.execute("""SELECT state, replay_lsn IS NOT NULL FROM pg_stat_replication
                                  WHERE application_name = %s""", (replica.name,)).fetchone()
        if row and row[0] == "streaming" and row[1]:    # and it has reported a replay position
            return
        if time.monotonic() > deadline:
            log = (replica.home / "server.log")
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ReplicaError(f"the replica did not start streaming within {timeout:.0f} s "
                                     f"(state {row[0] if row else 'not connected'}); its log:\n{tail}")
        time.sleep(0.1)


def _run(replica: Replica, program: str, *args: str, timeout: float) -> None:
    """Run one of the server's programs as the server's OS user. Output goes to files: pg_ctl's
    server inherits its stdout/stderr, and a pipe would never be closed."""
    log = replica.home / f"{program}.out"
    with open(log, "w") as out:
        if replica._user:
            os.chown(log, pwd.getpwnam(replica._user).pw_uid, -1)
        try:
            result = subprocess.run([str(replica._bin / program), *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=replica.home, timeout=timeout,
                                    **_as_user(replica._user))
        except subprocess.TimeoutExpired:
            raise ReplicaError(f"{program} did not finish within {timeout:.0f} s") from None
    if result.returncode:
        output = log.read_text().strip()
        raise ReplicaError(f"{program} failed (exit {result.returncode}): {_redact(output)}")


def _as_user(user: str | None) -> dict:
    if not user:
        return {}
    account = pwd.getpwnam(user)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [],
            "env": {**os.environ, "HOME": account.pw_dir, "USER": user, "LOGNAME": user}}


def _redact(text: str) -> str:
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text)


# --------------------------------------------------------------------------- pg_hba.conf
def _allow_replication(primary: dict, name: str) -> tuple[Path, str, str]:
    """Add one ``replication`` line to the primary's pg_hba.conf (at the top) with the method the
    file gives this user for ordinary connections from the same place; reload. Refused (with the
    reason) when the file is not writable here or no line lets this user in from there."""
    hba_file: Path = primary["hba_file"]
    info = primary["conninfo"]
    host = info.get("hostaddr") or info.get("host") or ""
    local = not host or host.startswith("/")
    if not os.access(hba_file, os.W_OK):
        raise ReplicaUnavailable(f"the server's pg_hba.conf ({hba_file}) allows no replication connection "
                                 "and cannot be changed from here")
    cleanup_stale_hba(hba_file)
    with psycopg.connect(_primary_url(primary), autocommit=True) as conn:
        method = conn.execute("""
            SELECT auth_method FROM pg_hba_file_rules
            WHERE error IS NULL AND type = %(type)s
              AND ('all' = ANY(database) OR current_database() = ANY(database))
              AND ('all' = ANY(user_name) OR current_user = ANY(user_name))
              AND (%(local)s OR address IN ('all', 'samehost', 'samenet')
                   OR CASE WHEN address ~ '^[0-9.]+$' AND netmask ~ '^[0-9.]+$'
                           THEN %(host)s::inet & netmask::inet = address::inet & netmask::inet END)
            ORDER BY line_number LIMIT 1""",
            {"type": "local" if local else "host", "local": local,
             "host": "127.0.0.1" if local or host == "localhost" else host}).fetchone()
    if not method or method[0] == "reject":
        raise ReplicaUnavailable(f"the server's pg_hba.conf ({hba_file}) allows no replication connection, "
                                 "and no line to copy its method from")
    where = "local replication all" if local else "host replication all " + (
        "127.0.0.1/32" if host == "localhost" else f"{host}/32")
    line = f"{where} {method[0]}  {HBA_MARK} {name} pid {os.getpid()}"
    text = hba_file.read_text()
    hba_file.write_text(line + "\n" + text)
    _reload(_primary_url(primary))
    return hba_file, line, _primary_url(primary)


def _primary_url(primary: dict) -> str:
    return psycopg.conninfo.make_conninfo(**primary["conninfo"], dbname="postgres")


def _remove_hba_lines(hba_file: Path, drop) -> bool:
    try:
        lines = hba_file.read_text().splitlines(keepends=True)
    except OSError:
        return False
    kept = [line for line in lines if not drop(line.rstrip("\n"))]
    if len(kept) != len(lines):
        hba_file.write_text("".join(kept))
        return True
    return False


def _reload(url: str) -> None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_reload_conf()")
    except psycopg.Error:
        pass


# --------------------------------------------------------------------------- clean-up
def cleanup_stale() -> list[Path]:
    """Stop and delete every replica under BASE whose owning process no longer runs."""
    removed = stale_homes("replica-*")
    for home in removed:
        data = home / "data"
        if (data / "postmaster.pid").exists():
            user = pwd.getpwuid(data.stat().st_uid).pw_name if os.geteuid() == 0 else None
            bin_dir = _stale_bin_dir(data)
            if bin_dir:
                _stop_cluster(bin_dir, data, user)
        shutil.rmtree(home, ignore_errors=True)
    return removed


def cleanup_stale_hba(hba_file: Path) -> bool:
    """Remove the lines this module added to ``hba_file`` for replicas whose process is gone."""
    def stale(line: str) -> bool:
        match = re.search(re.escape(HBA_MARK) + r" \S+ pid (\d+)$", line)
        return bool(match) and not _alive(int(match.group(1)))
    return _remove_hba_lines(hba_file, stale)


def _stale_bin_dir(data: Path) -> Path | None:
    """The binaries a left-over replica ran with: the postmaster's, while it runs."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        return Path(os.readlink(f"/proc/{pid}/exe")).parent
    except (OSError, ValueError, IndexError):
        return None


def _stop_cluster(bin_dir: Path, data: Path, user: str | None) -> None:
    if not (data / "postmaster.pid").exists():
        return
    subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "60", "stop"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                   cwd="/", timeout=90, **_as_user(user))
