"""Where the project's files are: sql/, notebooks/, runbooks/, outputs/.

The package is installed editable (``pip install -e .``) from a checkout, so the
project root is two levels above this file's folder. ``TENANCY_RUNBOOK_HOME`` overrides it.
"""

import os
from pathlib import Path

ROOT = Path(os.environ.get("TENANCY_RUNBOOK_HOME") or Path(__file__).resolve().parents[2])
SQL_DIR = ROOT / "sql"
NOTEBOOKS_DIR = ROOT / "notebooks"
RUNBOOKS_DIR = ROOT / "runbooks"
OUTPUTS_DIR = ROOT / "outputs"
