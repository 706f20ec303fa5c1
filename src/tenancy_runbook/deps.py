"""The lock files: the exact version and sha256 hashes of every package the suite installs.

``requirements.lock`` is what ``make install`` installs (so ``make demo``, ``make test`` and
``.ci/run``): pyproject.toml's [build-system] requires, [project] dependencies and the ``test``
extra with everything they pull in. ``requirements-lab.lock`` adds the ``lab`` extra (JupyterLab)
for ``make lab`` and environment.yml, at the same versions for every package the two share. Both
are universal resolutions (uv) for CPython 3.10 and later on any platform, Linux included, with a
``--hash=sha256:`` for each file of each pinned release, and are installed with
``pip install --require-hashes --no-deps``: nothing is resolved, or downloaded unchecked, at
install time.

Each lock's header records the sha256 of a canonical form of pyproject.toml's dependency tables
(not of the whole file: editing pytest's settings leaves the locks valid).
:func:`disagreements` says what no longer matches; ``python -m tenancy_runbook.deps --check``
prints it and exits 1 (``.ci/run`` runs it before the tests), and
``python -m tenancy_runbook.deps --lock`` (``make lock``) writes both locks again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# The checkout this code runs from (it is installed editable). An installed copy has no lock.
CHECKOUT = Path(__file__).resolve().parents[2]
PYPROJECT = CHECKOUT / "pyproject.toml"
LOCK = CHECKOUT / "requirements.lock"
LAB_LOCK = CHECKOUT / "requirements-lab.lock"
# Which extras each lock holds, on top of the build requirements and the base dependencies.
EXTRAS = {"requirements.lock": ("test",), "requirements-lab.lock": ("test", "lab")}

DIGEST_PREFIX = "# pyproject.toml dependencies sha256: "
# The Pythons whose pins :func:`disagreements` checks (CPython on x86_64 Linux). The resolution
# itself is universal, from the first of them up (pyproject's requires-python is >=3.10).
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
FIX = "run make lock"

_HASH = re.compile(r"--hash[=\s]+sha256:([0-9a-f]{64})(?![0-9a-f])")
# Options a requirements file may carry that install nothing themselves (uv writes none of them).
_HARMLESS_OPTIONS = ("--index-url", "--extra-index-url", "-i", "--find-links", "-f", "--no-index",
                     "--only-binary", "--no-binary", "--prefer-binary")


def lock_sha256(path: Path | str | None = None) -> str | None:
    """The sha256 of the lock file (requirements.lock), or None without one (an installed copy)."""
    path = Path(path or LOCK)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: tomli comes with pytest (the test extra)
        import tomli as tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def _canonical(text: str) -> str:
    """One requirement in a canonical spelling: normalized name, sorted extras and specifiers."""
    req = Requirement(text)
    extras = "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]" if req.extras else ""
    url = f" @ {req.url}" if req.url else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{url}{req.specifier}{marker}"


def declared(pyproject: Path | str | None = None) -> dict[str, list[str]]:
    """pyproject.toml's dependency tables, each a sorted list of canonical requirements."""
    data = _load_toml(Path(pyproject or PYPROJECT))
    project = data.get("project", {})
    tables = {"build-system.requires": data.get("build-system", {}).get("requires", []),
              "project.dependencies": project.get("dependencies", [])}
    for extra, reqs in project.get("optional-dependencies", {}).items():
        tables[f"project.optional-dependencies.{canonicalize_name(extra)}"] = reqs
    canonical = {name: sorted(_canonical(r) for r in reqs) for name, reqs in tables.items()}
    canonical["project.requires-python"] = [str(project.get("requires-python", ""))]
    return canonical


def pyproject_digest(pyproject: Path | str | None = None) -> str:
    """The sha256 each lock's header records: over :func:`declared`, as sorted compact JSON."""
    text = json.dumps(declared(pyproject), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _wanted(tables: dict[str, list[str]], extras: tuple[str, ...]) -> list[str]:
    """The requirements a lock with these extras must pin."""
    names = ["build-system.requires", "project.dependencies"]
    names += [f"project.optional-dependencies.{canonicalize_name(e)}" for e in extras]
    return [r for name in names for r in tables.get(name, [])]


@dataclass(frozen=True)
class Pin:
    """One requirement of a lock file."""
    name: str                 # canonical project name ("" for a line that is no requirement)
    version: str | None       # the exact version (``==``), None when it is not pinned to one
    marker: Marker | None
    hashes: tuple[str, ...]   # sha256 hex digests
    text: str                 # the requirement as written, without its hashes

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        """Whether pip installs it there (the running interpreter by default)."""
        return self.marker is None or self.marker.evaluate(environment)


def pins(lock: Path | str | None = None) -> list[Pin]:
    """Every requirement of a lock file, in its order."""
    text = re.sub(r"\\\r?\n", " ", Path(lock or LOCK).read_text())
    found = []
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            if line.split("=")[0].split()[0] not in _HARMLESS_OPTIONS:  # -e, -r, -c: unhashed
                found.append(Pin("", None, None, (), line))
            continue
        hashes = tuple(_HASH.findall(line))
        requirement = re.split(r"\s--[a-z]", line, maxsplit=1)[0].strip()  # before --hash
        try:
            req = Requirement(requirement)
        except InvalidRequirement:
            found.append(Pin("", None, None, hashes, requirement))
            continue
        specs = list(req.specifier)
        exact = (len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version
                 and not req.url)
        found.append(Pin(canonicalize_name(req.name), specs[0].version if exact else None, req.marker,
                         hashes, requirement))
    return found


def _linux(python: str) -> dict[str, str]:
    return {"python_version": python, "python_full_version": f"{python}.0", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
            "os_name": "posix", "platform_machine": "x86_64", "extra": ""}


def _pythons(versions: list[str]) -> str:
    return "Python " + ", ".join(versions) + " on Linux"


def _allows(req: Requirement, version: str) -> bool:
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _lock_problems(lock: Path, tables: dict[str, list[str]], extras: tuple[str, ...], digest: str) -> list[str]:
    name = lock.name
    problems = []
    header = [line for line in lock.read_text().splitlines() if line.startswith(DIGEST_PREFIX)]
    if not header:
        problems.append(f"{name} records no digest of pyproject.toml's dependencies "
                        f"(a line '{DIGEST_PREFIX}...'); {FIX}")
    elif header[0][len(DIGEST_PREFIX):].strip() != digest:
        recorded = header[0][len(DIGEST_PREFIX):].strip()
        problems.append(f"{name} was made from other dependencies than pyproject.toml's now "
                        f"(dependencies sha256 {recorded[:12]}... recorded, {digest[:12]}... now); {FIX}")
    locked = pins(lock)
    for pin in locked:
        if pin.version is None:
            problems.append(f"{name}: '{pin.text}' is not pinned to one exact version; {FIX}")
        elif not pin.hashes:
            problems.append(f"{name}: '{pin.text}' has no --hash=sha256; {FIX}")
    # Every requirement of pyproject.toml pinned, once per Python, at a version it allows.
    found: dict[str, list[str]] = defaultdict(list)  # problem -> the Pythons it is found for
    for text in _wanted(tables, extras):
        req = Requirement(text)
        for python in PYTHONS:
            env = _linux(python)
            if req.marker and not req.marker.evaluate(env):
                continue
            there = [p for p in locked if p.name == canonicalize_name(req.name) and p.version and p.applies(env)]
            if not there:
                found[f"{name} has no pin of {req.name}, which pyproject.toml requires ({text}),"].append(python)
            elif len(there) > 1:
                found[f"{name} pins {req.name} more than once ({', '.join(p.text for p in there)}),"].append(python)
            elif not _allows(req, there[0].version):
                found[f"{name} pins {req.name}=={there[0].version}, which pyproject.toml's "
                      f"{text} does not allow,"].append(python)
    problems += [f"{what} for {_pythons(versions)}; {FIX}" for what, versions in found.items()]
    return problems


def _same_versions(lock: Path, lab_lock: Path) -> list[str]:
    """The lab lock adds JupyterLab to what the tests run on, and changes none of it."""
    found: dict[str, list[str]] = defaultdict(list)
    base, lab = pins(lock), pins(lab_lock)
    for python in PYTHONS:
        env = _linux(python)
        lab_versions = {p.name: p.version for p in lab if p.name and p.applies(env)}
        for pin in base:
            if not pin.name or not pin.applies(env):
                continue
            if pin.name not in lab_versions:
                found[f"{lab_lock.name} lacks {pin.name}, which {lock.name} pins ({pin.name}=={pin.version}),"
                      ].append(python)
            elif lab_versions[pin.name] != pin.version:
                found[f"{lab_lock.name} pins {pin.name}=={lab_versions[pin.name]} where {lock.name} pins "
                      f"{pin.name}=={pin.version} (make lab would change what the tests ran on),"].append(python)
    return [f"{what} for {_pythons(versions)}; {FIX}" for what, versions in found.items()]


def disagreements(pyproject: Path | str | None = None, lock: Path | str | None = None,
                  lab_lock: Path | str | None = None) -> list[str]:
    """Where pyproject.toml and the lock files disagree, one line each ending with what to do;
    empty when each lock records pyproject's current :func:`pyproject_digest`, pins every package
    once at one version with hashes, pins each requirement of pyproject (build system, base, test
    extra; the lab lock the lab extra too) for every Python of :data:`PYTHONS` at a version its
    specifier allows, and the lab lock keeps requirements.lock's versions."""
    pyproject = Path(pyproject or PYPROJECT)
    tables, digest = declared(pyproject), pyproject_digest(pyproject)
    problems = []
    locks = {"requirements.lock": Path(lock or LOCK), "requirements-lab.lock": Path(lab_lock or LAB_LOCK)}
    for role, path in locks.items():
        if not path.is_file():
            problems.append(f"{path.name} is missing; {FIX}")
            continue
        problems += _lock_problems(path, tables, EXTRAS[role], digest)
    if all(path.is_file() for path in locks.values()):
        problems += _same_versions(locks["requirements.lock"], locks["requirements-lab.lock"])
    return problems


_PURPOSE = {
    "requirements.lock": ("what make install installs (make demo, make test and .ci/run use it):",
                          "pyproject.toml's [build-system] requires, [project] dependencies and test extra"),
    "requirements-lab.lock": ("what make lab and environment.yml install: requirements.lock's packages at",
                              "its versions plus the lab extra (JupyterLab) of pyproject.toml"),
}


def _header(lock: Path, digest: str, uv_version: str) -> str:
    what, which = _PURPOSE[lock.name]
    return (f"# {lock.name}: {what}\n"
            f"# {which},\n"
            f"# with all they need, each at one version with the sha256 of each of its files: a universal\n"
            f"# resolution for CPython {PYTHONS[0]}+ on any platform, Linux included. Installed with\n"
            f"#   pip install --require-hashes --no-deps -r {lock.name}\n"
            f"# Do not edit: `make lock` writes it again ({uv_version}). CI fails while it disagrees with\n"
            f"# pyproject.toml (python -m tenancy_runbook.deps --check), by the digest below among others.\n"
            f"{DIGEST_PREFIX}{digest}\n")


def write_locks(uv_args: list[str] | tuple[str, ...] = ()) -> None:
    """Resolve both locks again with uv (``make lock``), keeping the versions already locked where
    pyproject still allows them (``--upgrade`` in uv_args moves everything to the newest)."""
    tables, digest = declared(), pyproject_digest()
    build = "".join(r + "\n" for r in tables["build-system.requires"])  # read from stdin ("-")
    uv = [sys.executable, "-m", "uv"]
    uv_version = subprocess.run([*uv, "--version"], capture_output=True, text=True, check=True).stdout.split("(")[0]
    for lock, constraints in ((LOCK, None), (LAB_LOCK, LOCK)):
        command = [*uv, "pip", "compile", "pyproject.toml", "-", "--universal", "--python-version", PYTHONS[0],
                   "--generate-hashes", "--custom-compile-command", "make lock", "--quiet", "-o", lock.name]
        command += [f"--extra={extra}" for extra in EXTRAS[lock.name]]
        command += ["-c", constraints.name] if constraints else []
        print("==", " ".join(["uv", *command[3:]]), flush=True)
        subprocess.run([*command, *uv_args], cwd=CHECKOUT, input=build, text=True, check=True)
        body = lock.read_text()
        start = body.find("# This file was autogenerated")  # uv's own header; ours goes above it
        lock.write_text(_header(lock, digest, uv_version.strip()) + body[max(start, 0):])
        print(f"== {lock.name}: {sum(1 for _ in pins(lock))} packages, sha256 {lock_sha256(lock)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tenancy_runbook.deps", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 when pyproject.toml and the locks disagree")
    action.add_argument("--lock", action="store_true", help="write both locks again with uv (make lock); "
                        "further arguments go to uv pip compile, e.g. --upgrade")
    parser.add_argument("--pyproject", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--requirements-lock", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lab-lock", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.lock:
        write_locks(rest)
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    problems = disagreements(args.pyproject, args.requirements_lock, args.lab_lock)
    if problems:
        print("pyproject.toml and the lock files disagree:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"requirements.lock and requirements-lab.lock agree with pyproject.toml "
          f"(dependencies sha256 {pyproject_digest(args.pyproject)[:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
