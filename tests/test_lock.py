"""The lock files (src/tenancy_runbook/deps.py): they agree with pyproject.toml, every requirement
has its hashes, and what make install installed is exactly requirements.lock. No network, and no
database or tenancy spec: nothing here runs per app."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.version import Version

from tenancy_runbook import deps

LOCKS = (deps.LOCK, deps.LAB_LOCK)


def test_the_locks_agree_with_pyproject():
    assert deps.disagreements() == []


def test_what_is_installed_is_exactly_the_lock():
    """make install installed requirements.lock: each package it pins for this interpreter is here
    at exactly that version (so are the lab lock's: make lab keeps the same versions)."""
    here = [pin for pin in deps.pins() if pin.applies()]
    assert len(here) > 80, "the whole tree is pinned, not only pyproject's own requirements"
    assert {"papermill", "prettytable", "pytest", "setuptools", "jupyter-client"} <= {p.name for p in here}
    wrong = {}
    for pin in here:
        try:
            installed = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or Version(installed) != Version(pin.version):
            wrong[pin.name] = f"{installed} installed, {pin.version} locked"
    assert wrong == {}, "installed otherwise than requirements.lock: run make install"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_requirement_is_pinned_exactly_with_its_hashes(lock):
    text = lock.read_text()
    requirement_lines = re.findall(r"^[A-Za-z0-9].*$", text, re.M)
    pins = deps.pins(lock)
    assert len(pins) == len(requirement_lines) > 80
    for pin in pins:
        assert pin.name and re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", pin.version or ""), pin.text
        assert pin.hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.hashes), pin.text
    # pip's hash-checking mode: no line installs anything unhashed (-e, -r, a path, a URL)
    assert not re.search(r"^\s*-[erc]\b|^\s*[./]|://", text, re.M)


def test_the_lab_lock_adds_to_the_test_lock_and_changes_nothing_in_it():
    base = {(p.name, p.version) for p in deps.pins(deps.LOCK) if p.applies()}
    lab = {(p.name, p.version) for p in deps.pins(deps.LAB_LOCK) if p.applies()}
    assert base < lab and "jupyterlab" in {name for name, _ in lab - base}


def test_lock_sha256(tmp_path):
    assert deps.lock_sha256() == hashlib.sha256(deps.LOCK.read_bytes()).hexdigest()
    assert deps.lock_sha256(tmp_path / "requirements.lock") is None


@pytest.fixture
def project(tmp_path):
    """Copies of pyproject.toml and both locks; check() says where they disagree."""
    for name in ("pyproject.toml", "requirements.lock", "requirements-lab.lock"):
        shutil.copy(deps.CHECKOUT / name, tmp_path / name)
    return tmp_path


def check(project):
    return deps.disagreements(project / "pyproject.toml", project / "requirements.lock",
                              project / "requirements-lab.lock")


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_copies_agree_and_pytest_settings_are_not_dependencies(project):
    assert check(project) == []
    pyproject = project / "pyproject.toml"
    edit(pyproject, 'addopts = "-ra', 'addopts = "-x -ra')
    edit(pyproject, '"pyyaml>=6",', '"PyYAML >= 6",')  # the same requirement, spelled otherwise
    assert deps.pyproject_digest(pyproject) == deps.pyproject_digest()
    assert check(project) == []


def test_a_new_dependency_is_reported(project):
    edit(project / "pyproject.toml", '"pandas>=2",', '"pandas>=2",\n    "rich>=13",')
    problems = check(project)
    assert deps.pyproject_digest(project / "pyproject.toml") != deps.pyproject_digest()
    made = [p.split()[0] for p in problems if "was made from other dependencies than pyproject.toml's now" in p]
    assert made == ["requirements.lock", "requirements-lab.lock"]
    assert any(p.startswith("requirements.lock has no pin of rich") and "3.10, 3.11, 3.12, 3.13" in p
               for p in problems)
    assert all(p.endswith("; run make lock") for p in problems)


def test_a_specifier_the_lock_no_longer_meets_is_reported(project):
    edit(project / "pyproject.toml", '"prettytable<3.12",', '"prettytable<3.11",')
    locked = {p.version for p in deps.pins(project / "requirements.lock") if p.name == "prettytable"}
    (version,) = locked
    problems = check(project)
    assert f"requirements.lock pins prettytable=={version}, which pyproject.toml's prettytable<3.11 does not " \
           f"allow, for Python 3.10, 3.11, 3.12, 3.13 on Linux; run make lock" in problems
    # and a new extra (the lab lock must pin it; requirements.lock need not)
    edit(project / "pyproject.toml", 'lab = ["jupyterlab>=4"]', 'lab = ["jupyterlab>=4", "ipywidgets>=8"]')
    problems = check(project)
    assert any(p.startswith("requirements-lab.lock has no pin of ipywidgets") for p in problems)
    assert not any(p.startswith("requirements.lock has no pin") for p in problems)


def test_a_pin_that_violates_a_specifier_is_reported(project):
    lock = project / "requirements.lock"
    (version,) = {p.version for p in deps.pins(lock) if p.name == "prettytable"}
    edit(lock, f"prettytable=={version} ", "prettytable==3.12.0 ")  # the release that breaks ipython-sql
    problems = check(project)
    assert "requirements.lock pins prettytable==3.12.0, which pyproject.toml's prettytable<3.12 does not " \
           "allow, for Python 3.10, 3.11, 3.12, 3.13 on Linux; run make lock" in problems
    assert any(p.startswith(f"requirements-lab.lock pins prettytable=={version} where requirements.lock pins "
                            "prettytable==3.12.0") for p in problems)
    assert len(problems) == 2


def test_a_lock_without_hashes_digest_or_pins_is_reported(project):
    lock = project / "requirements.lock"
    text = lock.read_text()
    # one package's hashes gone; its line must end without the continuation then
    text = re.sub(r"^(pyyaml==[^ \n]+) \\\n(?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+", r"\1\n", text,
                  count=1, flags=re.M)
    text = re.sub(r"^# pyproject.toml dependencies sha256: .*\n", "", text, flags=re.M)
    text = re.sub(r"^squawk-cli==.*\n(?:    .*\n)+", "", text, count=1, flags=re.M)
    lock.write_text(text + "-e .\n")
    problems = check(project)
    assert any(p.startswith("requirements.lock records no digest of pyproject.toml's dependencies") for p in problems)
    assert any(p.startswith("requirements.lock: 'pyyaml==") and "has no --hash=sha256" in p for p in problems)
    assert any(p.startswith("requirements.lock has no pin of squawk-cli") for p in problems)
    assert "requirements.lock: '-e .' is not pinned to one exact version; run make lock" in problems
    lock.unlink()
    assert check(project)[0] == "requirements.lock is missing; run make lock"


def test_the_check_command_fails_with_what_to_do(project):
    command = [sys.executable, "-m", "tenancy_runbook.deps", "--check", "--pyproject", str(project / "pyproject.toml"),
               "--requirements-lock", str(project / "requirements.lock"),
               "--lab-lock", str(project / "requirements-lab.lock")]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "agree with pyproject.toml" in ok.stdout
    edit(project / "pyproject.toml", '"tqdm>=4.60",', '"tqdm>=99",')
    bad = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "pyproject.toml and the lock files disagree" in bad.stderr and "tqdm>=99" in bad.stderr
    assert "run make lock" in bad.stderr


def test_installs_and_ci_go_through_the_lock():
    makefile = (deps.CHECKOUT / "Makefile").read_text()
    assert "--require-hashes --no-deps" in makefile and "-r requirements.lock" in makefile
    assert re.search(r"^\$\(STAMP\): .*requirements\.lock", makefile, re.M)
    assert "-e '.[" not in makefile, "no install that resolves dependencies on the fly"
    ci = (deps.CHECKOUT / ".ci" / "run").read_text()
    assert ci.index("tenancy_runbook.deps --check") < ci.index("make test")
    assert "-r requirements-lab.lock" in (deps.CHECKOUT / "environment.yml").read_text()
