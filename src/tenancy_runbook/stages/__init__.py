"""One module per stage, named like the stage's notebook (without its number) and its sql/ folder.

Each module declares ``READ_ONLY``: True for a stage that never writes (its notebook connects
read-only), False for one that does. What needs to know (``plan``, ``interactive``) asks
:func:`read_only`, never a list of its own.
"""

from __future__ import annotations

import importlib


def module(stage: str):
    """The module of a stage, by its notebook's stem: 20_backfill -> tenancy_runbook.stages.backfill."""
    return importlib.import_module(f"{__name__}.{stage.split('_', 1)[1]}")


def read_only(stage: str) -> bool:
    """Does ``stage`` (a notebook's stem) never write? Its module's ``READ_ONLY``; a module that
    does not declare it is taken as writing, the safe side."""
    return getattr(module(stage), "READ_ONLY", False) is True
