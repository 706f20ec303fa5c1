"""A runbook file: which stages run, in which order, with which parameters.

    name: datahub-tenancy
    next: >                  # optional: what the operator does after a run that passed
      Deploy the new version, then run runbooks/finish.yaml.
    parameters:              # for every stage whose notebook declares them
      lock_timeout: 5s
    stages:
      - notebook: 00_preflight            # notebooks/00_preflight.ipynb
      - notebook: 20_backfill
        parameters: {lock_timeout: 10s}   # this stage only

Everything is checked before anything runs (before the runner connects): an unknown stage or
parameter, or a value params.py does not allow (type, choice, range, duration, the order of
the batch sizes a stage gets), is a RunbookError (exit 2) naming the parameter, the value
and what is allowed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import papermill
import yaml

from . import params, spec
from .errors import RunbookError
from .paths import DEFAULT_SPEC, NOTEBOOKS_DIR, ROOT

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
    next: str = ""                 # what the operator does after a run that passed ("" when absent)
    spec: spec.Spec | None = None  # the tenancy spec its stages follow ('spec:', else DEFAULT_SPEC)

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

    An override is read as its parameter's type (params.parse): text exactly as typed,
    ``true``/``false``, a number.
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
    unknown_keys = set(doc) - {"name", "description", "spec", "next", "parameters", "stages"}
    if unknown_keys:
        raise RunbookError(f"runbook {path}: unknown key(s) {', '.join(sorted(unknown_keys))}; "
                           "allowed: name, description, spec, next, parameters, stages")
    tenancy = _spec(doc.get("spec"), path)
    if doc.get("next") is not None and not isinstance(doc["next"], str):
        raise RunbookError(f"runbook {path}: 'next' must be text (what the operator does after a "
                           f"run that passed), not {type(doc['next']).__name__}")
    if not isinstance(doc.get("stages"), list) or not doc["stages"]:
        raise RunbookError(f"runbook {path} must be a mapping with a non-empty 'stages' list")
    common = _mapping(doc.get("parameters"), f"{path}: 'parameters'")
    stages = [_stage(entry, i, path) for i, entry in enumerate(doc["stages"], 1)]
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise RunbookError(f"runbook {path} lists a stage twice: {', '.join(names)}")

    overrides = dict(overrides or {})
    sources = [("runbook 'parameters'", common), ("-p", overrides)] + [
        (f"stage {s.name}", s.parameters) for s in stages]
    bad = []
    for source, values in sources:
        if "run_id" in values:
            raise RunbookError(f"parameter 'run_id' ({source}) is set by the runner, one per run; remove it")
        for name in values:
            if not any(name in s.declared for s in stages):
                raise RunbookError(f"unknown parameter {name!r} ({source}): no stage of {path.name} "
                                   f"declares it. Known: {', '.join(sorted(_all_declared(stages)))}")
        if values is overrides:   # typed on the command line: read as each parameter's type
            values.update({name: params.parse(name, text) for name, text in values.items()})
        values.update({name: params.normalize(name, value) for name, value in values.items()})
        bad += params.problems(values, source)
    orders: dict[str, list[str]] = {}      # values out of order, as a stage gets them -> the stages
    for stage in stages:
        merged = {k: v for k, v in common.items() if k in stage.declared}
        merged.update(stage.parameters)
        merged.update({k: v for k, v in overrides.items() if k in stage.declared})
        stage.parameters = merged
        if not bad:   # each value allowed on its own: now the orders between them
            for line in params.relation_problems(params.with_defaults(stage.declared, merged), "{where}"):
                orders.setdefault(line, []).append(stage.name)
    bad += [line.replace("{where}", ("stages " if len(names) > 1 else "stage ") + ", ".join(names))
            for line, names in orders.items()]
    if bad:
        raise RunbookError("bad parameter value(s), nothing was run:\n  " + "\n  ".join(bad)
                           + f"\n`tenancy-runbook plan {path}` lists every parameter with its allowed values.")
    return Runbook(path=path, name=str(doc.get("name") or path.stem), stages=stages,
                   sha256=hashlib.sha256(raw).hexdigest(), next=(doc.get("next") or "").strip(), spec=tenancy)


def _spec(value, path: Path) -> spec.Spec:
    """The tenancy spec a runbook names (a path relative to the runbook file), loaded and checked
    before anything runs; without 'spec:', the Data Hub spec (paths.DEFAULT_SPEC)."""
    if value is None:
        return spec.load(DEFAULT_SPEC)
    if not isinstance(value, str) or not value.strip():
        raise RunbookError(f"runbook {path}: 'spec' must be the path of a tenancy spec, relative to the "
                           "runbook file (spec: datahub.spec.yaml); see docs/spec.md")
    target = path.parent / value
    if not target.is_file():
        raise RunbookError(f"runbook {path}: 'spec' names {target}, which is not a file. Give the path of "
                           "the tenancy spec relative to the runbook file (docs/spec.md).")
    return spec.load(target)


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
    for key in declared:
        params.get(key)           # every notebook parameter is declared in params.py
    values = _mapping(entry.get("parameters"), f"{path}: stage {name} 'parameters'")
    for key in values:
        if key not in declared:
            raise RunbookError(f"runbook {path}: stage {name} has no parameter {key!r}; it declares "
                               + (", ".join(declared) or "none"))
    return Stage(name=name, notebook=notebook, declared=declared, parameters=values)


def _mapping(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RunbookError(f"{what} must be a mapping of name: value")
    return dict(value)


def _all_declared(stages: list[Stage]) -> set[str]:
    return {name for s in stages for name in s.declared}


def command(stage: str, s: spec.Spec | None = None) -> str:
    """``tenancy-runbook run <runbook>`` for the runbook beside the tenancy spec (in its folder)
    that names it and runs ``stage``, as an operator types it in the checkout: what a stage's
    message tells the operator to run next (runbooks/finish.yaml for Data Hub's 60_remove_guard).
    Where none is there, the words say which runbook to write or find."""
    s = s or spec.active()
    for candidate in sorted(s.path.parent.glob("*.yaml")):
        try:
            doc = yaml.safe_load(candidate.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list):
            continue                       # a spec, or not a runbook
        named = doc.get("spec")
        target = (candidate.parent / named) if isinstance(named, str) else DEFAULT_SPEC
        if target.resolve() != s.path.resolve():
            continue
        if stage in (st.get("notebook") for st in doc["stages"] if isinstance(st, dict)):
            return f"tenancy-runbook run {_shown(candidate)}"
    return f"tenancy-runbook run <a runbook with 'spec: {s.path.name}' and the stage {stage}>"


def _shown(path: Path) -> Path:
    """The path relative to the checkout when it lies inside it, else as it is."""
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path
