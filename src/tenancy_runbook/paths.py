"""Where the project's files are: sql/, notebooks/, runbooks/, outputs/; and where a kernel
finds the runner's terminal (PROGRESS_ENV).

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

# The runner's terminal device, which it names for its kernels (runner.run) so that they draw
# their progress bars on it (nb.terminal); unset or empty: there is none.
PROGRESS_ENV = "TENANCY_RUNBOOK_PROGRESS"
# The run directory, which the runner names for its kernels: a stage that leaves a file for the
# team (90_rollback's Prisma migration) writes it there.
RUN_DIR_ENV = "TENANCY_RUNBOOK_RUN_DIR"
# The tenancy spec a run follows (its runbook's ``spec:``), which the runner names for its kernels
# (spec.active); unset (a notebook run on its own): DEFAULT_SPEC.
SPEC_ENV = "TENANCY_RUNBOOK_SPEC"
DEFAULT_SPEC = RUNBOOKS_DIR / "datahub.spec.yaml"
