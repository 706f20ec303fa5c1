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
    ("backfill_vs_single_update", ">=", 0.90, "batched backfill throughput vs one UPDATE (idle server)"),
    ("max_batch_ms", "<=", 250, "longest batch transaction (ms)"),
    ("writer_max_wait_ms_enforce", "<=", 50, "longest writer wait during the runbook's enforcement (ms)"),
]


NOTES = Path(__file__).with_name("notes.md")   # hand-written reading of the figures, kept in the report

WHEN_MISSED = {  # what a miss means and what would close it (shown only for a missed target)
    "backfill_vs_single_update":
        "The batches pay one round trip, one commit, one planning and one count of their pages per "
        "batch that the single UPDATE pays once, and each commit makes dead rows visible to "
        "autovacuum, which then works alongside them. Closing it: a larger target_batch_ms (fewer, "
        "longer batches), batch_pause_ms 0, autovacuum held off the table for the backfill.",
    "max_batch_ms":
        "A batch's duration varies with checkpoints, autovacuum and the writers' row locks; the size "
        "adapts to the last batches only. Closing it: a lower target_batch_ms (more headroom), or a "
        "larger max_wal_size so checkpoints are rarer during the backfill.",
    "writer_max_wait_ms_enforce":
        "Every exclusive lock of the enforcement is held for milliseconds, so a long wait means a "
        "writer queued behind a DDL statement that itself waited (lock_timeout bounds that wait). "
        "Closing it: a lower lock_timeout, so the DDL gives up sooner and retries.",
}

GROWTH = [  # (label, how to read it from one result)
    ("batched backfill, idle, rows/s", lambda r: r["backfill"].get("idle", {}).get("batched", {}).get("rows_per_s")),
    ("single UPDATE, idle, rows/s",
     lambda r: r["backfill"].get("idle", {}).get("single_update", {}).get("rows_per_s")),
    ("batched vs single UPDATE, idle (ratio)", lambda r: r["backfill"].get("idle", {}).get("ratio")),
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
  `sql/bench/single_update.sql`, one transaction. Each is measured twice, on copies of its own:
  on an idle server (the cost of batching alone: the target), then under the writers' load.
  Under load the comparison is lopsided: the single UPDATE makes the writers wait for its row
  locks, so it has the CPUs to itself, while the batches share them with writers that keep going.
- Enforcement: the runbook's `enforce_not_null.apply` (CHECK NOT VALID, VALIDATE, SET NOT NULL, DROP
  CHECK, each DDL under lock_timeout with retries) against the seed's Option B DO block verbatim
  (`sql/bench/seed_option_b.sql`), retried when it deadlocks with a writer (the retries are counted).
- Memory and papermill: `tenancy-runbook run --from 20_backfill --to 50_post_verify` on a third
  copy, the RSS of the runner and of every kernel sampled every 50 ms; papermill's overhead is the
  stage's wall time minus the durations papermill records for its cells.
"""


def headline(r: dict) -> dict:
    return {"rows": r["rows"],
            "backfill_vs_single_update": r["backfill"].get("idle", r["backfill"])["ratio"],
            "max_batch_ms": r["backfill"]["batched"]["max_batch_ms"],
            "writer_max_wait_ms_enforce": r["enforcement"]["runbook"]["writers"].get("max_ms"),
            "writer_max_wait_ms_enforce_seed": r["enforcement"]["seed_option_b"]["writers"].get("max_ms"),
            "writer_p99_ms_backfill": r["backfill"]["batched"]["writers"].get("p99_ms"),
            "peak_rss_mb": r["runbook"]["peak_rss_mb"]}


def chart(results: list[dict], path: Path) -> None:
    rows = [r["rows"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(rows, [r["backfill"]["batched"]["rows_per_s"] for r in results], marker="o",
                 label="runbook batches, writers")
    axes[0].plot(rows, [r["backfill"]["single_update"]["rows_per_s"] for r in results], marker="o",
                 label="single UPDATE, writers")
    if all("idle" in r["backfill"] for r in results):
        axes[0].plot(rows, [r["backfill"]["idle"]["batched"]["rows_per_s"] for r in results], marker="s",
                     linestyle="--", label="runbook batches, idle")
        axes[0].plot(rows, [r["backfill"]["idle"]["single_update"]["rows_per_s"] for r in results], marker="s",
                     linestyle="--", label="single UPDATE, idle")
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
    top = headline(results[-1])
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
        i = b.get("idle")
        idle = (f"{i['batched']['rows_per_s']:,} / {i['single_update']['rows_per_s']:,} ({i['ratio']})"
                if i else "not measured")
        lines.append(
            f"| {r['rows']:,} | {idle} | {b['batched']['rows_per_s']:,} | {b['single_update']['rows_per_s']:,} | {b['ratio']} "
            f"| {b['batched']['batches']} | {b['batched']['max_batch_ms']} "
            f"| {b['batched']['writers'].get('p99_ms')} / {b['batched']['writers'].get('max_ms')} "
            f"| {b['single_update']['writers'].get('p99_ms')} / {b['single_update']['writers'].get('max_ms')} "
            f"| {e['runbook']['writers'].get('max_ms')} | {e['seed_option_b']['writers'].get('max_ms')} "
            f"| {k['peak_rss_runner_mb']}; {', '.join(map(str, k['peak_rss_kernels_mb']))} |")
    added = sorted({r["backfill"]["idle"]["added_by"] for r in results if r["backfill"].get("idle", {}).get("added_by")})
    if added:
        lines += ["", "The idle columns come from a later invocation (same sizes, same seed, same "
                  "backfill code): " + ", ".join(f"`{a}`" for a in added) + "."]
    lines += ["", "![throughput, writer waits and memory against rows](benchmarks.png)", "",
              "Papermill's own overhead per stage (stage wall time minus the time spent in its cells), largest run:", "",
              "| stage | seconds | in cells | papermill overhead |", "|---|---:|---:|---:|"]
    lines += [f"| {s['stage']} | {s['seconds']} | {s['in_cells_s']} | {s['papermill_overhead_s']} |"
              for s in results[-1]["runbook"]["stages"]]
    lines += preflight_section(results)
    lines += ["", "## Targets (largest run)", "", "| target | measured | met |", "|---|---:|---|"]
    for key, op, target, what in TARGETS:
        value = top[key]
        if key == "backfill_vs_single_update" and "idle" not in results[-1]["backfill"]:
            what = "batched backfill throughput vs one UPDATE (under the writers: not measured idle)"
        met = value is not None and (value >= target if op == ">=" else value <= target)
        lines.append(f"| {what} {op} {target} | {value} | {'yes' if met else 'no'} |")
    lines.append(f"| (for information) the same ratio under the writers' load | {results[-1]['backfill']['ratio']} | |")
    if len(results) > 1:
        first = results[0]
        lines.append(f"| memory flat in row count | {first['runbook']['peak_rss_mb']} MB at {first['rows']:,} rows, "
                     f"{top['peak_rss_mb']} MB at {top['rows']:,} | "
                     f"{'yes' if top['peak_rss_mb'] <= 1.2 * first['runbook']['peak_rss_mb'] else 'no'} |")
    missed = [(key, what) for key, op, target, what in TARGETS
              if top[key] is None or not (top[key] >= target if op == ">=" else top[key] <= target)]
    for key, what in missed:
        target = next(t for k, _, t, _ in TARGETS if k == key)
        lines += ["", f"Missed: {what}: {top[key]} against {target} "
                  f"(by {abs(top[key] - target):.3g}). {WHEN_MISSED[key]}"]
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
    lines += ["", "## Headline figures (largest run)", "", "```json", json.dumps(top, indent=2), "```", "", HOW]
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
