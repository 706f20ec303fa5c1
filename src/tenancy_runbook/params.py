"""Every parameter of the runbook, declared once: type, default, allowed values, one line of help.

Three readers, one declaration:

- the notebooks: their parameters cell repeats the defaults as literals (papermill reads them
  there; a test checks each cell is exactly ``cell(names)``), and the next cell calls
  ``params.check(globals())``, so a bad value stops the notebook before it connects;
- the runner: ``runbook.load`` checks every value (runbook file, ``-p``) with ``problem()``
  and the merged values of each stage with ``relation_problems()``, before anything connects;
- ``tenancy-runbook plan``: ``Param.allowed()`` for each parameter.

A duration is a PostgreSQL time value as ``SET statement_timeout`` takes it: a number
(decimals allowed, PostgreSQL 12+) with an optional unit us, ms, s, min, h or d
(case-sensitive; no unit means milliseconds); 0 means no limit.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from .errors import RunbookError

CHOICES = ("fail", "quarantine")

# PostgreSQL's own grammar for an integer GUC with a time unit, minus what would surprise an
# operator: a sign, an exponent, hex or octal (PostgreSQL reads "010" as 8 ms).
_DURATION = re.compile(r"\s*(?P<number>(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)\s*(?P<unit>us|ms|s|min|h|d)?\s*")
_UNIT_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1}
MAX_MS = 2**31 - 1        # lock_timeout and statement_timeout are int4 milliseconds
DURATION_RULES = ("a number with an optional unit us|ms|s|min|h|d (case-sensitive; none = ms), 0 = no limit, "
                  f"at most {MAX_MS}ms (24.8 days); e.g. 500ms, 1.5s, 1h")
DURATION_ALLOWED = "a PostgreSQL duration: " + DURATION_RULES
_SIZE = re.compile(r"\s*(?P<number>(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)\s*(?P<unit>B|kB|MB|GB|TB)?\s*")
_UNIT_BYTES = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, None: 1}
SIZE_ALLOWED = ("a size as PostgreSQL writes one: a number with an optional unit B|kB|MB|GB|TB "
                "(case-sensitive; none = bytes), 0 = no limit; e.g. 64MB, 1.5GB")
AUTOVACUUM_CHOICES = ("wait_wraparound", "wait", "continue")


def duration_ms(text) -> int:
    """Milliseconds of a duration, as PostgreSQL rounds them; ValueError saying why not."""
    if not isinstance(text, str):
        raise ValueError(f"expected text such as '500ms', got {type(text).__name__}")
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError("not a PostgreSQL duration")
    exact = float(match["number"]) * _UNIT_MS[match["unit"]]
    ms = round(exact)                       # rint(), as PostgreSQL's parse_int
    if ms == 0 and exact > 0:
        raise ValueError("it rounds to 0 ms, which PostgreSQL takes as no limit (write 0 for that)")
    if ms > MAX_MS:
        raise ValueError(f"longer than PostgreSQL allows ({MAX_MS}ms)")
    return ms


def size_bytes(text) -> int:
    """Bytes of a size such as '64MB' (1024-based, as PostgreSQL's units); ValueError saying why not."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    if not isinstance(text, str):
        raise ValueError(f"expected text such as '64MB', got {type(text).__name__}")
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError("not a size")
    return round(float(match["number"]) * _UNIT_BYTES[match["unit"]])


@dataclass(frozen=True)
class Param:
    name: str
    type: type                       # bool | int | float | str
    default: object
    help: str                        # one line: the comment in every notebook's parameters cell
    choices: tuple[str, ...] = ()
    minimum: float | None = None     # value >= minimum
    above: float | None = None       # value > above
    duration: bool = False
    size: bool = False               # text such as '64MB' (size_bytes)
    empty_ok: bool = True            # for text
    optional_name: bool = False      # for text: a name without surrounding blanks, or empty (none)
    runner_refuses: str = ""         # why a runbook run may not set it to anything but its default

    def allowed(self, short: bool = False) -> str:
        """What values it takes (``short``: a duration's rules left to DURATION_ALLOWED)."""
        order = [" <= ".join(chain) for chain in ORDERED if self.name in chain]
        return "; ".join([self._allowed(short)] + order)

    def _allowed(self, short: bool) -> str:
        if self.type is bool:
            return "true or false" + ("; only false in a runbook run" if self.runner_refuses else "")
        if self.choices:
            return " | ".join(self.choices)
        if self.duration:
            return "a duration, e.g. 500ms, 1.5s, 1h; 0 = no limit" if short else DURATION_ALLOWED
        if self.size:
            return "a size, e.g. 64MB, 1GB; 0 = no limit" if short else SIZE_ALLOWED
        if self.type in (int, float):
            kind = "an integer" if self.type is int else "a number"
            if self.minimum is not None:
                return f"{kind} >= {_number(self.minimum)}"
            if self.above is not None:
                return f"{kind} > {_number(self.above)}"
            return kind
        if self.optional_name:
            return "a name, or empty for none"
        return "any text" if self.empty_ok else "a non-empty name"

    def problem(self, value, where: str = "") -> str | None:
        """Why ``value`` is not allowed and what is (``where`` it came from in brackets), or None.

        Only runbook.load names a ``where`` (a runbook's source: its file, ``-p``): a value
        other than the default of a ``runner_refuses`` parameter is refused there, and only there
        (a notebook run alone, by hand or with papermill, takes it).
        """
        reason = None
        if self.type is bool:
            ok = value is True or value is False
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        if ok and self.type in (int, float):
            ok = ((self.minimum is None or value >= self.minimum)
                  and (self.above is None or value > self.above))
        elif ok and self.choices:
            ok = value in self.choices
        elif ok and self.duration:
            try:
                duration_ms(value)
            except ValueError as exc:
                ok, reason = False, str(exc)
        elif ok and self.size:
            try:
                size_bytes(value)
            except ValueError as exc:
                ok, reason = False, str(exc)
        elif ok and self.type is str and self.optional_name:
            ok = value == value.strip()
        elif ok and self.type is str and not self.empty_ok:
            ok = bool(value.strip())
        if ok and where and self.runner_refuses and value != self.default:
            return f"{self.name} = {value!r} ({where}): {self.runner_refuses}"
        if ok:
            return None
        return (f"{self.name} = {value!r}" + (f" ({where})" if where else "") + ": "
                + (f"{reason}; " if reason else "") + f"allowed: {self.allowed()}")

    def literal(self) -> str:
        """The default as the parameters cell writes it."""
        return json.dumps(self.default) if self.type is str else repr(self.default)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


_DDL_LOCK = "longest wait for a lock per attempt (a DDL step, a batch); a waiting DDL queues writers"
PARAMS: dict[str, Param] = {p.name: p for p in (
    Param("on_collision", str, "fail", "fail | quarantine: keep the winner of each colliding group (the "
          "spec's order), move the rest", choices=CHOICES),
    Param("on_orphan", str, "fail", "fail | quarantine: move rows the backfill rule cannot place",
          choices=CHOICES),
    Param("max_listed", int, 20, "how many colliding pairs, users or duplicates a message or table lists",
          minimum=0),
    Param("show_personal_data", bool, False, "show users' e-mail addresses, for an interactive session "
          "(never in a runbook run's evidence)",
          runner_refuses="the runner refuses it: a run's notebooks, HTML and manifest are archived as "
          "evidence and its output goes to terminals and CI logs, so users are named there by id only. "
          "To see their e-mail addresses, run notebooks/00_preflight.ipynb alone (JupyterLab, or "
          "papermill -p show_personal_data True) and keep that output out of the run's evidence"),
    Param("batch_size", int, 1000, "rows in the first batch; then it adapts toward target_batch_ms", minimum=1),
    Param("min_batch_size", int, 100, "the smallest the batch size adapts or halves to",
          minimum=1),
    Param("max_batch_size", int, 50000, "the largest the batch size adapts to", minimum=1),
    Param("target_batch_ms", float, 120.0, "how long one batch transaction should take", above=0),
    Param("batch_pause_ms", float, 0.0, "sleep between batches (replica lag, I/O headroom)", minimum=0),
    Param("backfill_workers", int, 1, "connections backfilling one table at once, each its own page "
          "(or key) ranges; more than 1 only with CPU and I/O to spare (see README)", minimum=1),
    Param("max_replica_lag", str, "64MB", "wait between batches while a standby replays this far behind "
          "(pg_stat_replication), 0: not watched", size=True),
    Param("on_autovacuum", str, "wait_wraparound", "wait_wraparound | wait | continue: wait between "
          "batches while autovacuum works on the table (only an anti-wraparound one, any, or never)",
          choices=AUTOVACUUM_CHOICES),
    Param("max_throttle_wait", str, "1h", "longest total wait for database health (replica lag, "
          "autovacuum) in one stage, then stop clearly, 0: no limit", duration=True),
    Param("batch_statement_timeout", str, "5s", "a batch running longer is cancelled and retried smaller",
          duration=True),
    Param("lock_timeout", str, "500ms", _DDL_LOCK, duration=True),
    Param("ddl_retry_total_s", float, 60.0, "keep retrying a DDL step (backoff + jitter) this long, then stop",
          above=0),
    Param("statement_timeout", str, "1h", "longest one statement may run: a DDL step (VALIDATE scans a "
          "table), or one query of a read-only stage's checks", duration=True),
    Param("quiet_period", str, "15min", "the guard must have placed no row for this long before it is "
          "removed (old application servers gone)", duration=True),
    Param("run_id", str, "", "set by the runner (quarantine and records name it); empty: an ad-hoc id"),
    Param("unique_index", str, "", "one more index that must exist, be UNIQUE and valid, besides the spec's "
          "indexes (always checked), empty: none", optional_name=True),
    Param("confirm", bool, False, "must be True for a writing stage run outside the runner (JupyterLab, "
          "plain papermill) to change anything; 90_rollback: always"),
    Param("refuse_unconfirmed", bool, False, "fail (rather than dry-run) when confirm is not True"),
    Param("restore_quarantine", bool, False, "also put quarantined rows back as they were"),
    Param("quarantine_run_id", str, "", "restore only the rows this run quarantined; empty: all"),
)}

# Parameters that must keep an order, checked on the values a stage receives.
ORDERED = (("min_batch_size", "batch_size", "max_batch_size"),)


def get(name: str) -> Param:
    try:
        return PARAMS[name]
    except KeyError:
        raise RunbookError(f"parameter {name!r} is not declared in tenancy_runbook/params.py: "
                           "the checkout is inconsistent (every notebook parameter is declared there)") from None


def parse(name: str, text):
    """A value typed on the command line (``-p NAME VALUE``) as the parameter's type.

    Text for a text parameter; true/false (any case) for a boolean; a number for a number.
    What does not parse stays text, so problem() names it as typed.
    """
    param = get(name)
    if not isinstance(text, str) or param.type is str:
        return text
    if param.type is bool:
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    for kind in (int, float):         # an integer for a number stays one: 0, not 0.0
        try:
            return kind(text.strip())
        except ValueError:
            pass
    return text


def normalize(name: str, value):
    """A duration or size given as a bare number (YAML ``lock_timeout: 0``, papermill ``-p lock_timeout 0``)
    becomes its text; PostgreSQL reads it as milliseconds either way."""
    if (get(name).duration or get(name).size) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def problems(values: dict, where: str = "") -> list[str]:
    """What is wrong with each value, one line each (each parameter on its own)."""
    return [p for name, value in values.items() if (p := get(name).problem(value, where))]


def relation_problems(values: dict, where: str = "") -> list[str]:
    """The ORDERED chains ``values`` holds in full, each checked once its members are each allowed."""
    out = []
    for chain in ORDERED:
        if not all(name in values and get(name).problem(values[name]) is None for name in chain):
            continue
        numbers = [values[name] for name in chain]
        if any(a > b for a, b in zip(numbers, numbers[1:])):
            out.append(", ".join(f"{n} = {values[n]!r}" for n in chain) + (f" ({where})" if where else "")
                       + ": allowed: " + " <= ".join(chain))
    return out


def with_defaults(names, values: dict) -> dict:
    """The value each of ``names`` gets: from ``values``, else its declared default."""
    return {name: values.get(name, get(name).default) for name in names}


def check_values(values: dict) -> dict:
    """``values`` (each declared here), or a RunbookError naming each bad one and what is allowed."""
    found = problems(values) + relation_problems(values)
    if found:
        raise RunbookError("bad parameter value(s):\n  " + "\n  ".join(found))
    return values


def check(namespace: dict) -> None:
    """A notebook's parameters, right after its parameters cell (``params.check(globals())``).

    Checks every declared parameter found in ``namespace`` (a duration given as a bare number
    becomes its text, in place) and raises a RunbookError before the notebook connects.
    """
    present = [name for name in PARAMS if name in namespace]
    for name in present:
        namespace[name] = normalize(name, namespace[name])
    values = {name: namespace[name] for name in present}
    found = problems(values) + relation_problems(values)
    if found:
        raise RunbookError(
            "bad parameter value(s); nothing ran, not even a connection:\n  " + "\n  ".join(found)
            + "\nSet allowed values (papermill -p NAME VALUE, or edit the parameters cell) and run "
              "the notebook again.")


def cell(names) -> str:
    """The parameters cell of a notebook declaring ``names``: literal defaults, one-line help."""
    return "\n".join(f"{n}: {get(n).type.__name__} = {get(n).literal()}  # {get(n).help}" for n in names)
