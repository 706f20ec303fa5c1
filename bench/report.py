"""docs/benchmarks.md (+ .json and .png) from bench/run.py's results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGETS = [  # (headline key, comparison, target, what it says)
    ("backfill_vs_single_update", ">=", 1.0, "batched backfill (1 worker) throughput vs one UPDATE (idle server)"),
    ("backfill_vs_single_update_1m", ">=", 0.95,
     "batched backfill (1 worker) throughput vs one UPDATE at 1,000,000 rows (idle server)"),
    ("backfill_2_workers_vs_single_update", ">=", 1.4,
     "batched backfill with 2 workers vs one UPDATE (idle server)"),
    ("backfill_2_workers_vs_single_update_1m", ">=", 1.4,
     "batched backfill with 2 workers vs one UPDATE at 1,000,000 rows (idle server)"),
    ("max_batch_ms", "<=", 250, "longest batch transaction, any batched backfill measured, cancelled tries included (ms)"),
    ("writer_max_wait_ms_enforce", "<=", 50, "longest writer wait during the runbook's enforcement (ms)"),
]
ONE_MILLION = 1_000_000   # the size the *_1m figures are read at


NOTES = Path(__file__).with_name("notes.md")   # hand-written reading of the figures, kept in the report

_BATCH_COSTS = (
    "Per batch the backfill pays what the single UPDATE pays once: a transaction (four round trips: BEGIN, "
    "its settings, the statement, COMMIT; under 0.1 ms each on localhost), a plan, a hash of the Connections (it "
    "grows with the Connection table: about 3 ms of a 120 ms batch at 10M rows). The per-row "
    "foreign-key check, almost half of a batch, the single UPDATE pays too. Each commit hands dead row "
    "versions to autovacuum, which then works beside the batches (the single UPDATE's are vacuumed "
    "after it, outside its time): most of the extra WAL at 10M rows (see Reading these figures); and "
    "the next batches' index entries delete the dead ones they meet on full leaf pages (B-tree "
    "bottom-up deletion: see What a commit costs, in Reading these figures). "
    "Holding autovacuum off the table made the batches slower, not faster (measured by hand). ")
_CLOSING = ("Closing it: backfill_workers 2 where a CPU is free (one UPDATE cannot use a second core), "
            "batch_pause_ms 0. (Looking up only a batch's own connections does not help: a batch's rows "
            "reference nearly every connection, as daily metrics do.)")
WHEN_MISSED = {  # what a miss means and what would close it (shown only for a missed target)
    "backfill_vs_single_update": _BATCH_COSTS + _CLOSING,
    "backfill_vs_single_update_1m":
        "At 1M rows the table stays in memory and the work per row is cheap, so what each commit adds "
        "weighs more than at 10M: after a commit, the batches' new index entries find the earlier "
        "batches' dead ones on full leaf pages and delete them there and then (B-tree bottom-up "
        "deletion), work the single UPDATE leaves to VACUUM after it (see What a commit costs, in "
        "Reading these figures). Fewer, longer batches close it (a larger target_batch_ms), at the "
        "price of holding each batch's row locks longer; the runbook keeps its batches short. On a "
        "shared 2-CPU machine one run of either also varies by 10 to 20 % from the next (the runs "
        "listed under the 1- and 2-worker table; `--repeat N` keeps the median of each). " + _CLOSING,
    "backfill_2_workers_vs_single_update":
        "Two workers go faster only while each has a CPU of its own: on a 2-CPU machine the two server "
        "backends share them with the benchmark's client, the WAL writer, the checkpointer and "
        "autovacuum, and two batches that run at once each take longer, so the size controller gives "
        "each a smaller batch. A hand measurement on this kind of machine (PostgreSQL 15, 1M rows, fixed "
        "50-page batches on two connections) reached 1.51. Closing it: as many workers as free CPUs, "
        "and the 1-worker costs above.",
    "backfill_2_workers_vs_single_update_1m":
        "As for 2 workers at the largest size; at 1M rows each batch is short, so the fixed costs per "
        "batch weigh more.",
    "max_batch_ms":
        "A batch's duration varies with checkpoints, autovacuum, the writers' row locks and, with 2 "
        "workers, the other worker's batch running at the same time; the size adapts to the last "
        "batches only. The longest ones came in pairs, both workers at once: a stall of the whole server "
        "(a checkpoint), not a batch grown too large; a lower target_batch_ms (80 ms, by hand at 3M rows) "
        "did not remove them. Closing it: a larger max_wal_size, so checkpoints are rarer during the "
        "backfill (a server setting, not the runbook's), or bounding each batch by its statement timeout "
        "(a stalled batch is then cancelled and retried smaller: its work is lost); the benchmark's "
        "batched runs do that since the figures with max_try_ms (batch_statement_timeout 200ms). A cancelled try "
        "is timed by the client, from sending the statement to its ROLLBACK done: beyond the statement "
        "timeout it counts the time the server takes to notice the cancel and the client's own wake-up, "
        "which on a small machine that also runs the replica (replaying every batch) can be tens of ms; "
        "the row locks are released when the statement ends, before the ROLLBACK. Closing that part: "
        "a batch_statement_timeout further below 250 ms, at the price of more cancelled work.",
    "writer_max_wait_ms_enforce":
        "Every exclusive lock of the enforcement is held for milliseconds, so a long wait means a "
        "writer queued behind a DDL statement that itself waited (lock_timeout bounds that wait). "
        "Closing it: a lower lock_timeout, so the DDL gives up sooner and retries.",
}


def idle_of(r: dict) -> dict | None:
    """The idle comparison of the batches and the single UPDATE: the newest one measured (the
    1- and 2-worker measurement), else the earlier --idle-into one, else None."""
    return r["backfill"].get("throughput") or r["backfill"].get("idle")


def throughput(r: dict | None, key: str):
    """A figure of the 1- and 2-worker measurement of ``r`` (None when not measured)."""
    return ((r or {}).get("backfill", {}).get("throughput") or {}).get(key)


def ratio_1_worker(r: dict | None):
    """Batched (1 worker) vs single UPDATE: idle when measured so, else under the writers."""
    if r is None:
        return None
    return (idle_of(r) or r["backfill"])["ratio"]


def replica_part(r: dict | None, part: str, key: str):
    replica = (r or {}).get("backfill", {}).get("replica") or {}
    return (replica.get(part) or {}).get(key)


def longest_batch(r: dict) -> float:
    """The longest batch of every batched backfill measured at this size."""
    b = r["backfill"]
    runs = [b["batched"], (idle_of(r) or {}).get("batched"), throughput(r, "batched_2_workers"),
            (b.get("replica") or {}).get("batched")]
    return max(run.get("max_try_ms", run["max_batch_ms"]) for run in runs if run)


GROWTH = [  # (label, how to read it from one result)
    ("batched backfill, idle, rows/s", lambda r: (idle_of(r) or {}).get("batched", {}).get("rows_per_s")),
    ("single UPDATE, idle, rows/s", lambda r: (idle_of(r) or {}).get("single_update", {}).get("rows_per_s")),
    ("batched vs single UPDATE, idle (ratio)", lambda r: (idle_of(r) or {}).get("ratio")),
    ("batched backfill, 2 workers, idle, rows/s",
     lambda r: (throughput(r, "batched_2_workers") or {}).get("rows_per_s")),
    ("2 workers vs single UPDATE, idle (ratio)", lambda r: throughput(r, "ratio_2_workers")),
    ("WAL bytes, batched (1 worker) / single UPDATE", lambda r: throughput(r, "wal_bytes_ratio")),
    ("largest replica lag, batched, MB", lambda r: mb(replica_part(r, "batched", "replica_lag_max_bytes"))),
    ("largest replica lag, single UPDATE, MB", lambda r: mb(replica_part(r, "single_update", "replica_lag_max_bytes"))),
    ("time throttled (replica lag), s", lambda r: (replica_part(r, "batched", "throttle") or {}).get("seconds")),
    ("batched backfill, under writers, rows/s", lambda r: r["backfill"]["batched"]["rows_per_s"]),
    ("single UPDATE, under writers, rows/s", lambda r: r["backfill"]["single_update"]["rows_per_s"]),
    ("batched vs single UPDATE, under writers (ratio)", lambda r: r["backfill"]["ratio"]),
    ("batches", lambda r: r["backfill"]["batched"]["batches"]),
    ("longest batch, ms", lambda r: r["backfill"]["batched"]["max_batch_ms"]),
    ("median batch, ms", lambda r: r["backfill"]["batched"]["p50_batch_ms"]),
    ("writers' max wait during the batches, ms", lambda r: r["backfill"]["batched"]["writers"].get("max_ms")),
    ("writers' max wait during the single UPDATE, ms",
     lambda r: r["backfill"]["single_update"]["writers"].get("max_ms")),
    ("writers' max wait, runbook enforcement, ms", lambda r: r["enforcement"]["runbook"]["writers"].get("max_ms")),
    ("writers' max wait, seed Option B, ms", lambda r: r["enforcement"]["seed_option_b"]["writers"].get("max_ms")),
    ("runbook enforcement, s", lambda r: r["enforcement"]["runbook"]["seconds"]),
    ("seed Option B, s", lambda r: r["enforcement"]["seed_option_b"]["seconds"]),
    ("20_backfill stage through papermill, s",
     lambda r: next((s["seconds"] for s in r["runbook"]["stages"] if s["stage"] == "20_backfill"), None)),
    ("peak RSS, MB", lambda r: r["runbook"]["peak_rss_mb"]),
]

HOW = """## How it is measured

- Each size gets one seeded database (`demo.seed`: 2 connections per user, 3 metrics a day) with
  migration 1 applied, the guard installed and every table but MetricDaily backfilled; each
  measurement runs on its own copy (`CREATE DATABASE ... TEMPLATE`), so both backfills and both
  enforcements start from identical data.
- Writers: 4 connections, each looping insert MetricDaily / insert ChatMessage / update a
  MetricDaily row / update a Connection row (rows sampled from 1 % of the pages), 2 ms apart,
  autocommit, as an application of the old version would. Their latency is every statement's
  time from send to result while the measured step runs.
- Batched backfill: `backfill.backfill_table` with the default `BatchPolicy` (first pass over the
  heap pages in physical order, second pass by key over what is left). Single UPDATE:
  `sql/bench/single_update.sql`, one transaction. Each is measured on copies of its own: on an
  idle server (the cost of batching alone: the target), then under the writers' load. Under load
  the comparison is lopsided: the single UPDATE makes the writers wait for its row locks, so it
  has the CPUs to itself, while the batches share them with writers that keep going.
- Idle, each on its own copy and right after a `CHECKPOINT`: the batches with 1 worker (the
  default `BatchPolicy`) and with 2 (`BatchPolicy(workers=2)`: two connections taking disjoint
  page ranges), and the single UPDATE. WAL written: the server's WAL insert position before and
  after (`sql/bench/wal_position.sql`, `wal_since.sql`; cluster-wide, so autovacuum and
  checkpoints the step causes count too).
- With a replica: a streaming replica of the benchmark's server (`replica.start_replica`:
  `pg_basebackup -R` with the server's own binaries, on this machine; it reports its replay
  position every second), attached before the copies are made (`CREATE DATABASE ... STRATEGY
  FILE_COPY`, so the standby copies the files instead of replaying them). On each copy, once the
  replica has replayed it: the single UPDATE, and the batches with the default health limits
  (`BatchPolicy(limits=health.Limits())`: wait while the replica is more than 64 MB behind). The
  replay lag as the primary sees it (`sql/bench/replica_lag.sql`) sampled every 100 ms, the time
  the batches spent throttled (`Steer.throttle.summary()`), and how long after each step's end
  the replica had replayed everything.
- Enforcement: the runbook's `enforce_not_null.apply` (CHECK NOT VALID, VALIDATE, SET NOT NULL, DROP
  CHECK, each DDL under lock_timeout with retries) against the seed's Option B DO block verbatim
  (`sql/bench/seed_option_b.sql`), retried when it deadlocks with a writer (the retries are counted).
- Memory and papermill: `tenancy-runbook run --from 20_backfill --to 50_post_verify` on a third
  copy, the RSS of the runner and of every kernel sampled every 50 ms; papermill's overhead is the
  stage's wall time minus the durations papermill records for its cells.
"""


def mb(value) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def headline(results: list[dict]) -> dict:
    """The largest run's figures (the *_1m ones: the run of 1,000,000 rows, None without one)."""
    r = results[-1]
    at_1m = next((x for x in results if x["rows"] == ONE_MILLION), None)
    return {"rows": r["rows"],
            "backfill_vs_single_update": ratio_1_worker(r),
            "backfill_vs_single_update_1m": ratio_1_worker(at_1m),
            "backfill_2_workers_vs_single_update": throughput(r, "ratio_2_workers"),
            "backfill_2_workers_vs_single_update_1m": throughput(at_1m, "ratio_2_workers"),
            "max_batch_ms": longest_batch(r),
            "wal_bytes_ratio": throughput(r, "wal_bytes_ratio"),
            "replica_lag_max_bytes": replica_part(r, "batched", "replica_lag_max_bytes"),
            "writer_max_wait_ms_enforce": r["enforcement"]["runbook"]["writers"].get("max_ms"),
            "writer_max_wait_ms_enforce_seed": r["enforcement"]["seed_option_b"]["writers"].get("max_ms"),
            "writer_p99_ms_backfill": r["backfill"]["batched"]["writers"].get("p99_ms"),
            "peak_rss_mb": r["runbook"]["peak_rss_mb"]}


def ratio_source(r: dict | None) -> str:
    """Where the 1-worker ratio of ``r`` comes from, when not from the 1- and 2-worker measurement."""
    if r is None or r["backfill"].get("throughput"):
        return ""
    if r["backfill"].get("idle"):
        return f" (the earlier idle measurement, {measured_by(r['backfill']['idle']) or 'the main run'})"
    return " (under the writers: not measured idle)"


def measured_by(part: dict) -> str:
    """Which later invocation measured ``part`` (and at which commit), or ''."""
    if not part.get("added_by"):
        return ""
    commit = f" at commit `{part['git_commit'][:12]}`{' with changes' if part.get('git_dirty') else ''}" \
        if part.get("git_commit") else ""
    return f"`{part['added_by']}`{commit}" + (f" (PostgreSQL {part['postgresql']})" if part.get("postgresql") else "")


def backfill_section(results: list[dict]) -> list[str]:
    """The 1- and 2-worker measurement on an idle server, and the one with a replica attached."""
    measured = [r for r in results if r["backfill"].get("throughput")]
    if not measured:
        return ["", "## Batched backfill vs one UPDATE: workers, WAL, replica lag", "",
                "Not measured in these results: `bench/run.py --rows N --backfill-into <this json>` adds it."]
    lines = ["", "## Batched backfill vs one UPDATE: workers, WAL, replica lag", "",
             "Idle server, each on its own copy of the same data, right after a CHECKPOINT:", "",
             "| rows | single UPDATE rows/s (s) | 1 worker rows/s (s) | ratio | 2 workers rows/s (s) | ratio "
             "| longest batch ms, 1 / 2 workers | batches, 1 / 2 workers | WAL MB: single UPDATE / 1 worker / "
             "2 workers | WAL ratio (1 worker / single) |",
             "|---:|---:|---:|---:|---:|---:|---|---|---|---:|"]
    for r in measured:
        t = r["backfill"]["throughput"]
        s, one, two = t["single_update"], t["batched"], t["batched_2_workers"]
        lines.append(f"| {r['rows']:,} | {s['rows_per_s']:,} ({s['seconds']}) | {one['rows_per_s']:,} ({one['seconds']}) "
                     f"| {t['ratio']} | {two['rows_per_s']:,} ({two['seconds']}) | {t['ratio_2_workers']} "
                     f"| {one['max_batch_ms']} / {two['max_batch_ms']} | {one['batches']} / {two['batches']} "
                     f"| {mb(s['wal_bytes'])} / {mb(one['wal_bytes'])} / {mb(two['wal_bytes'])} | {t['wal_bytes_ratio']} |")
    lines += ["", "With a streaming replica of the server attached (the batches with the default health "
              "limits: they wait while the replica is more than 64 MB behind):", "",
              "| rows | single UPDATE rows/s | largest lag MB | caught up after s | batched rows/s | largest lag MB "
              "| caught up after s | time throttled s (episodes) |",
              "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in measured:
        rep = r["backfill"].get("replica") or {"unavailable": "not measured"}
        if "unavailable" in rep:
            lines.append(f"| {r['rows']:,} | no replica: {rep['unavailable']} | | | | | | |")
            continue
        s, b = rep["single_update"], rep["batched"]
        lines.append(f"| {r['rows']:,} | {s['rows_per_s']:,} | {mb(s['replica_lag_max_bytes'])} | "
                     f"{s['replica_caught_up_s']} | {b['rows_per_s']:,} | {mb(b['replica_lag_max_bytes'])} | "
                     f"{b['replica_caught_up_s']} | {b['throttle']['seconds']} ({b['throttle']['episodes']}) |")
        if b.get("stopped"):
            lines += ["", f"At {r['rows']:,} rows the batches stopped waiting for the replica: {b['stopped']}"]
    repeated = [r for r in measured if r["backfill"]["throughput"].get("repeat")]
    for r in repeated:
        t = r["backfill"]["throughput"]
        lines += ["", f"At {r['rows']:,} rows each idle backfill ran {t['repeat']} times in turn; the table shows "
                  "each one's median run. Every run's rows/s: single UPDATE "
                  f"{runs_of(t['single_update'])}, 1 worker {runs_of(t['batched'])}, 2 workers "
                  f"{runs_of(t['batched_2_workers'])}."]
    by = sorted({measured_by(r["backfill"][part]) for r in measured for part in ("throughput", "replica")
                 if r["backfill"].get(part)} - {""})
    if by:
        lines += ["", "Measured by a later invocation on a fresh seed of the same size: " + ", ".join(by) + "."]
    return lines


def runs_of(part: dict) -> str:
    return ", ".join(f"{v:,}" for v in part["runs_rows_per_s"])


def chart(results: list[dict], path: Path) -> None:
    rows = [r["rows"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(rows, [r["backfill"]["batched"]["rows_per_s"] for r in results], marker="o",
                 label="runbook batches, writers")
    axes[0].plot(rows, [r["backfill"]["single_update"]["rows_per_s"] for r in results], marker="o",
                 label="single UPDATE, writers")
    if all(idle_of(r) for r in results):
        axes[0].plot(rows, [idle_of(r)["batched"]["rows_per_s"] for r in results], marker="s",
                     linestyle="--", label="runbook batches, idle")
        axes[0].plot(rows, [idle_of(r)["single_update"]["rows_per_s"] for r in results], marker="s",
                     linestyle="--", label="single UPDATE, idle")
    if all(throughput(r, "batched_2_workers") for r in results):
        axes[0].plot(rows, [throughput(r, "batched_2_workers")["rows_per_s"] for r in results], marker="^",
                     linestyle="--", label="runbook batches, 2 workers, idle")
    axes[0].set_title("MetricDaily backfill throughput")
    axes[0].set_ylabel("rows/s")
    axes[1].plot(rows, [r["enforcement"]["runbook"]["writers"].get("max_ms") for r in results], marker="o",
                 label="runbook (CHECK NOT VALID recipe)")
    axes[1].plot(rows, [r["enforcement"]["seed_option_b"]["writers"].get("max_ms") for r in results], marker="o",
                 label="seed Option B")
    axes[1].set_title("Longest writer wait during NOT NULL enforcement")
    axes[1].set_ylabel("ms")
    axes[2].plot(rows, [r["runbook"]["peak_rss_mb"] for r in results], marker="o", label="peak RSS")
    axes[2].set_title("Peak memory (runner or kernel)")
    axes[2].set_ylabel("MB")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("MetricDaily rows")
        ax.legend(fontsize=8)
        ax.set_ylim(bottom=0)
    plt.tight_layout()
    fig.savefig(path, dpi=110)


def preflight_section(results: list[dict]) -> list[str]:
    """00_preflight's queries at each size, before migration 1 (no column: every row counted) and
    after it (the column nullable, every MetricDaily row still NULL: the most it has to read)."""
    measured = [r for r in results if r.get("preflight")]
    if not measured:
        return []
    names = list(dict.fromkeys(q for r in measured for when in ("before_migration_1", "after_migration_1")
                               for q in r["preflight"][when]["queries_s"]))
    lines = ["", "## 00_preflight (read-only; seconds)", "",
             "Each query alone in a read-only session, then the whole stage through the runner and papermill "
             "(kernel start, squawk and charts included), before migration 1 and after it with every "
             "MetricDaily row still NULL. The stage's own statement_timeout parameter (default 1h) bounds "
             "each query; a role's default does not apply.", "",
             "| rows | when | " + " | ".join(names) + " | whole stage |",
             "|---:|---|" + "---:|" * (len(names) + 1)]
    for r in measured:
        for when in ("before_migration_1", "after_migration_1"):
            m = r["preflight"][when]
            lines.append(f"| {r['rows']:,} | {when.replace('_', ' ')} | "
                         + " | ".join(str(m["queries_s"].get(n, "")) for n in names)
                         + f" | {m['stage_s']} ({m['stage_result']}) |")
    added = sorted({r["preflight"]["added_by"] for r in measured if r["preflight"].get("added_by")})
    if added:
        lines += ["", "Measured by a later invocation on a fresh seed of the same size: "
                  + ", ".join(f"`{a}`" for a in added) + "."]
    return lines


def write(out: Path, machine: dict, results: list[dict], command: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "command": command, "results": results},
                                                   indent=2) + "\n")
    chart(results, out.with_suffix(".png"))
    top = headline(results)
    lines = ["# Benchmarks", "",
             f"Reproduce: `{command}` (writes this file, `benchmarks.json` and `benchmarks.png`).", "",
             "## Machine", "",
             f"- {machine['cpus']} CPUs, {machine['memory_gb']} GiB, {machine['platform']}, Python {machine['python']}",
             f"- PostgreSQL {machine['postgresql']} (server and client on the same machine)",
             f"- suite commit `{machine['git_commit']}`; "
             + ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v), "",
             "## Results", "",
             "| rows | idle: batched / single UPDATE rows/s (ratio) | under writers: batched rows/s "
             "| single UPDATE rows/s | ratio | batches | max batch ms | writers p99 / max ms "
             "during backfill (batched) | during single UPDATE | writers max ms, enforcement: runbook | seed Option B "
             "| peak RSS MB (runner; kernels) |",
             "|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|---|"]
    for r in results:
        b, e, k = r["backfill"], r["enforcement"], r["runbook"]
        i = idle_of(r)
        idle = (f"{i['batched']['rows_per_s']:,} / {i['single_update']['rows_per_s']:,} ({i['ratio']})"
                if i else "not measured")
        lines.append(
            f"| {r['rows']:,} | {idle} | {b['batched']['rows_per_s']:,} | {b['single_update']['rows_per_s']:,} | {b['ratio']} "
            f"| {b['batched']['batches']} | {b['batched']['max_batch_ms']} "
            f"| {b['batched']['writers'].get('p99_ms')} / {b['batched']['writers'].get('max_ms')} "
            f"| {b['single_update']['writers'].get('p99_ms')} / {b['single_update']['writers'].get('max_ms')} "
            f"| {e['runbook']['writers'].get('max_ms')} | {e['seed_option_b']['writers'].get('max_ms')} "
            f"| {k['peak_rss_runner_mb']}; {', '.join(map(str, k['peak_rss_kernels_mb']))} |")
    added = sorted({measured_by(idle_of(r)) for r in results if idle_of(r)} - {""})
    if added:
        both = any(r["backfill"].get("idle") and r["backfill"].get("throughput") for r in results)
        lines += ["", "The idle columns come from a later invocation on a fresh seed of the same size: "
                  + ", ".join(added) + (" (the 1- and 2-worker measurement below, which replaces the earlier "
                                        "`--idle-into` one where both were made)." if both else ".")]
    lines += ["", "![throughput, writer waits and memory against rows](benchmarks.png)", "",
              "Papermill's own overhead per stage (stage wall time minus the time spent in its cells), largest run:", "",
              "| stage | seconds | in cells | papermill overhead |", "|---|---:|---:|---:|"]
    lines += [f"| {s['stage']} | {s['seconds']} | {s['in_cells_s']} | {s['papermill_overhead_s']} |"
              for s in results[-1]["runbook"]["stages"]]
    lines += backfill_section(results)
    lines += preflight_section(results)
    lines += ["", "## Targets (largest run; the 1,000,000-row ones at that size)", "",
              "| target | measured | met |", "|---|---:|---|"]
    at_1m = next((x for x in results if x["rows"] == ONE_MILLION), None)
    for key, op, target, what in TARGETS:
        value = top[key]
        if key.startswith("backfill_vs_single_update"):
            what += ratio_source(at_1m if key.endswith("_1m") else results[-1])
        met = "not measured" if value is None else "yes" if (value >= target if op == ">=" else value <= target) \
            else "no"
        lines.append(f"| {what} {op} {target} | {'not measured' if value is None else value} | {met} |")
    lines.append(f"| (for information) the same ratio under the writers' load | {results[-1]['backfill']['ratio']} | |")
    if len(results) > 1:
        first = results[0]
        lines.append(f"| memory flat in row count | {first['runbook']['peak_rss_mb']} MB at {first['rows']:,} rows, "
                     f"{top['peak_rss_mb']} MB at {top['rows']:,} | "
                     f"{'yes' if top['peak_rss_mb'] <= 1.2 * first['runbook']['peak_rss_mb'] else 'no'} |")
    missed = [(key, what) for key, op, target, what in TARGETS
              if top[key] is not None and not (top[key] >= target if op == ">=" else top[key] <= target)]
    for key, what in missed:
        target = next(t for k, _, t, _ in TARGETS if k == key)
        lines += ["", f"Missed: {what}: {top[key]} against {target} "
                  f"(by {abs(top[key] - target):.3g}). {WHEN_MISSED[key]}"]
    unmeasured = [what for key, _, _, what in TARGETS if top[key] is None]
    if unmeasured:
        lines += ["", "Not measured in these results: " + "; ".join(unmeasured) + ". "
                  + ("There is no run of 1,000,000 rows. " if at_1m is None else "")
                  + "`bench/run.py --rows N --backfill-into <this json>` measures the backfill figures "
                    "for sizes the results have."]
    deadlocks = [r["enforcement"]["seed_option_b"]["deadlocks_retried"] for r in results]
    if any(deadlocks):
        lines += ["", "The seed's Option B deadlocked with the writers and was retried "
                  + ", ".join(f"{d} time(s) at {r['rows']:,} rows" for d, r in zip(deadlocks, results))
                  + ": it takes ACCESS EXCLUSIVE on four tables one after the other in one transaction, "
                  "while a writer holds a lock on one and asks for another."]
    for r in results:
        for label, part in (("the batched backfill", r["backfill"]["batched"]),
                            ("the single UPDATE", r["backfill"]["single_update"]),
                            ("the runbook's enforcement", r["enforcement"]["runbook"]),
                            ("the seed's Option B", r["enforcement"]["seed_option_b"])):
            if part["writers"].get("errors"):
                lines += ["", f"Writer statements that failed during {label} at {r['rows']:,} rows: "
                          f"{part['writers']['errors']} (for example: "
                          + "; ".join(f"`{e}`" for e in sorted({e.splitlines()[0]
                                                                  for e in part["writers"].get("error_samples", [])}))
                          + ")."]
    if len(results) > 1:
        first = results[0]
        lines += ["", f"## Growth from {first['rows']:,} to {top['rows']:,} rows", "",
                  f"| figure | {first['rows']:,} | {top['rows']:,} | factor |", "|---|---:|---:|---:|"]
        for label, read in GROWTH:
            a, b = read(first), read(results[-1])
            factor = f"{b / a:.2f}" if a and b is not None else ""
            a, b = ("" if v is None else v for v in (a, b))
            lines.append(f"| {label} | {a} | {b} | {factor} |")
        lines.append(f"\n(rows grew by a factor of {top['rows'] / first['rows']:.0f})")
    if NOTES.exists():
        lines += ["", NOTES.read_text().rstrip()]
    lines += ["", "## Headline figures (largest run; the *_1m ones at 1,000,000 rows)", "", "```json",
              json.dumps(top, indent=2), "```", "", HOW]
    out.write_text("\n".join(lines))


def main() -> int:
    """Write the report again from a results file (after editing bench/notes.md, say)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("results", type=Path, help="a benchmarks.json written by bench/run.py")
    parser.add_argument("--command", help="the command that produced it (default: the one it records)")
    args = parser.parse_args()
    data = json.loads(args.results.read_text())
    command = args.command or data.get("command")
    if not command:
        parser.error("this results file does not record its command: give --command")
    write(args.results.with_suffix(".md"), data["machine"], data["results"], command)
    print(f"wrote {args.results.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
