"""A runbook file: which stages run, in which order, with which parameters.

    name: datahub-tenancy
    parameters:              # for every stage whose notebook declares them
      lock_timeout: 5s
    stages:
      - notebook: 00_preflight            # notebooks/00_preflight.ipynb
      - notebook: 20_backfill
        parameters: {lock_timeout: 10s}   # this stage only

Everything is checked before anything runs: an unknown stage or parameter, or a value of
the wrong type, is a RunbookError (exit 2) that names it.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import papermill
import yaml

from .errors import RunbookError
from .paths import NOTEBOOKS_DIR

_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


@dataclass
class Stage:
    name: str                      # the notebook's file stem, e.g. 40_enforce_not_null
    notebook: Path
    declared: dict                 # parameter name -> papermill's inspection of it
    parameters: dict = field(default_factory=dict)


@dataclass
class Runbook:
    path: Path
    name: str
    stages: list[Stage]
    sha256: str

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def select(self, start: str | None = None, stop: str | None = None) -> list[Stage]:
        """The stages from ``start`` to ``stop`` inclusive (names checked)."""
        names = self.stage_names()
        for label, value in (("--from", start), ("--to", stop)):
            if value is not None and value not in names:
                raise RunbookError(f"unknown stage {value!r} for {label}: {self.path.name} has "
                                   + ", ".join(names))
        first = names.index(start) if start else 0
        last = names.index(stop) if stop else len(names) - 1
        if first > last:
            raise RunbookError(f"--from {start} comes after --to {stop} in {self.path.name}")
        return self.stages[first:last + 1]


def load(path: str | Path, overrides: dict[str, str] | None = None) -> Runbook:
    """Read and check a runbook file, with ``-p NAME VALUE`` overrides (as typed) applied.

    An override is read as YAML (``true``, ``5``, ``0.5``) except for a parameter whose
    default is a string, which takes the text exactly as typed.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RunbookError(f"cannot read runbook {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise RunbookError(f"runbook {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise RunbookError(f"runbook {path} must be a mapping with a non-empty 'stages' list")
    unknown_keys = set(doc) - {"name", "description", "parameters", "stages"}
    if unknown_keys:
        raise RunbookError(f"runbook {path}: unknown key(s) {', '.join(sorted(unknown_keys))}; "
                           "allowed: name, description, parameters, stages")
    if not isinstance(doc.get("stages"), list) or not doc["stages"]:
        raise RunbookError(f"runbook {path} must be a mapping with a non-empty 'stages' list")
    common = _mapping(doc.get("parameters"), f"{path}: 'parameters'")
    stages = [_stage(entry, i, path) for i, entry in enumerate(doc["stages"], 1)]
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise RunbookError(f"runbook {path} lists a stage twice: {', '.join(names)}")

    overrides = overrides or {}
    for source, params in [("runbook 'parameters'", common), ("-p", overrides)] + [
            (f"stage {s.name}", s.parameters) for s in stages]:
        if "run_id" in params:
            raise RunbookError(f"parameter 'run_id' ({source}) is set by the runner, one per run; remove it")
        for name in params:
            if not any(name in s.declared for s in stages):
                raise RunbookError(f"unknown parameter {name!r} ({source}): no stage of {path.name} "
                                   f"declares it. Known: {', '.join(sorted(_all_declared(stages)))}")
    for stage in stages:
        merged = {k: v for k, v in common.items() if k in stage.declared}
        merged.update(stage.parameters)
        merged.update({k: _typed(stage, k, v) for k, v in overrides.items() if k in stage.declared})
        for name, value in merged.items():
            _check_type(stage, name, value)
        stage.parameters = merged
    return Runbook(path=path, name=str(doc.get("name") or path.stem), stages=stages,
                   sha256=hashlib.sha256(raw).hexdigest())


def _typed(stage: Stage, name: str, text):
    """A ``-p`` value: the text itself for a string parameter, else as YAML reads it."""
    if not isinstance(text, str) or _declared_type(stage.declared[name]) == "str":
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _stage(entry, index: int, path: Path) -> Stage:
    if isinstance(entry, str):
        entry = {"notebook": entry}
    if not isinstance(entry, dict) or "notebook" not in entry:
        raise RunbookError(f"runbook {path}: stage {index} must name a notebook "
                           "(- notebook: 00_preflight)")
    extra = set(entry) - {"notebook", "parameters"}
    if extra:
        raise RunbookError(f"runbook {path}: stage {index} has unknown key(s) {', '.join(sorted(extra))}")
    name = Path(str(entry["notebook"])).stem
    notebook = NOTEBOOKS_DIR / f"{name}.ipynb"
    if not notebook.is_file():
        known = ", ".join(sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")))
        raise RunbookError(f"runbook {path}: unknown stage {name!r} (no {notebook}). Stages: {known}")
    declared = papermill.inspect_notebook(str(notebook))
    params = _mapping(entry.get("parameters"), f"{path}: stage {name} 'parameters'")
    for key in params:
        if key not in declared:
            raise RunbookError(f"runbook {path}: stage {name} has no parameter {key!r}; it declares "
                               + (", ".join(declared) or "none"))
    return Stage(name=name, notebook=notebook, declared=declared, parameters=params)


def _mapping(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RunbookError(f"{what} must be a mapping of name: value")
    return dict(value)


def _all_declared(stages: list[Stage]) -> set[str]:
    return {name for s in stages for name in s.declared}


def _declared_type(info: dict) -> str:
    """The parameter's type: its annotation, else the type of its default value."""
    declared = info.get("inferred_type_name", "None")
    if declared != "None":
        return declared
    try:
        return type(ast.literal_eval(info.get("default", ""))).__name__
    except (ValueError, SyntaxError):
        return "None"


def _check_type(stage: Stage, name: str, value) -> None:
    expected = _declared_type(stage.declared[name])
    allowed = _TYPES.get(expected)
    if allowed is None:
        return
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    else:
        ok = isinstance(value, allowed)
    if not ok:
        raise RunbookError(f"parameter {name!r} of stage {stage.name} expects {expected}, "
                           f"got {value!r} ({type(value).__name__})")
