"""docs/benchmarks.md (+ .json and .png) from bench/run.py's results."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGETS = [  # (headline key, comparison, target, what it says)
    ("backfill_vs_single_update", ">=", 0.90, "batched backfill throughput vs one UPDATE"),
    ("max_batch_ms", "<=", 250, "longest batch transaction (ms)"),
    ("writer_max_wait_ms_enforce", "<=", 50, "longest writer wait during the runbook's enforcement (ms)"),
]


def headline(r: dict) -> dict:
    return {"rows": r["rows"],
            "backfill_vs_single_update": r["backfill"]["ratio"],
            "max_batch_ms": r["backfill"]["batched"]["max_batch_ms"],
            "writer_max_wait_ms_enforce": r["enforcement"]["runbook"]["writers"].get("max_ms"),
            "writer_max_wait_ms_enforce_seed": r["enforcement"]["seed_option_b"]["writers"].get("max_ms"),
            "writer_p99_ms_backfill": r["backfill"]["batched"]["writers"].get("p99_ms"),
            "peak_rss_mb": r["runbook"]["peak_rss_mb"]}


def chart(results: list[dict], path: Path) -> None:
    rows = [r["rows"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(rows, [r["backfill"]["batched"]["rows_per_s"] for r in results], marker="o", label="runbook batches")
    axes[0].plot(rows, [r["backfill"]["single_update"]["rows_per_s"] for r in results], marker="o",
                 label="single UPDATE")
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


def write(out: Path, machine: dict, results: list[dict], command: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
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
             "| rows | batched rows/s | single UPDATE rows/s | ratio | batches | max batch ms | writers p99 / max ms "
             "during backfill (batched) | during single UPDATE | writers max ms, enforcement: runbook | seed Option B "
             "| peak RSS MB (runner; kernels) |",
             "|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|"]
    for r in results:
        b, e, k = r["backfill"], r["enforcement"], r["runbook"]
        lines.append(
            f"| {r['rows']:,} | {b['batched']['rows_per_s']:,} | {b['single_update']['rows_per_s']:,} | {b['ratio']} "
            f"| {b['batched']['batches']} | {b['batched']['max_batch_ms']} "
            f"| {b['batched']['writers'].get('p99_ms')} / {b['batched']['writers'].get('max_ms')} "
            f"| {b['single_update']['writers'].get('p99_ms')} / {b['single_update']['writers'].get('max_ms')} "
            f"| {e['runbook']['writers'].get('max_ms')} | {e['seed_option_b']['writers'].get('max_ms')} "
            f"| {k['peak_rss_runner_mb']}; {', '.join(map(str, k['peak_rss_kernels_mb']))} |")
    lines += ["", "![throughput, writer waits and memory against rows](benchmarks.png)", "",
              "Papermill's own overhead per stage (stage wall time minus the time spent in its cells), largest run:", "",
              "| stage | seconds | in cells | papermill overhead |", "|---|---:|---:|---:|"]
    lines += [f"| {s['stage']} | {s['seconds']} | {s['in_cells_s']} | {s['papermill_overhead_s']} |"
              for s in results[-1]["runbook"]["stages"]]
    lines += ["", "## Targets (largest run)", "", "| target | measured | met |", "|---|---:|---|"]
    for key, op, target, what in TARGETS:
        value = top[key]
        met = value is not None and (value >= target if op == ">=" else value <= target)
        lines.append(f"| {what} {op} {target} | {value} | {'yes' if met else 'no'} |")
    if len(results) > 1:
        first = results[0]
        lines.append(f"| memory flat in row count | {first['runbook']['peak_rss_mb']} MB at {first['rows']:,} rows, "
                     f"{top['peak_rss_mb']} MB at {top['rows']:,} | "
                     f"{'yes' if top['peak_rss_mb'] <= 1.2 * first['runbook']['peak_rss_mb'] else 'no'} |")
    lines += ["", "## Headline figures (largest run)", "", "```json", json.dumps(top, indent=2), "```", ""]
    out.write_text("\n".join(lines))
