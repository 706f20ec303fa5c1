"""bench/run.py keeps working (a tiny size; its figures are read, never asserted on)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tenancy_runbook.paths import ROOT

KEYS = {"rows", "backfill_vs_single_update", "backfill_vs_single_update_1m", "backfill_2_workers_vs_single_update",
        "backfill_2_workers_vs_single_update_1m", "max_batch_ms", "wal_bytes_ratio", "replica_lag_max_bytes",
        "writer_max_wait_ms_enforce", "writer_max_wait_ms_enforce_seed", "writer_p99_ms_backfill", "peak_rss_mb"}
ROWS = 3000
ENV = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}   # the embedded server


def bench(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "bench/run.py", "--rows", str(ROWS), *args], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def headline_of(report) -> dict:
    return json.loads(re.search(r"```json\n(.*?)\n```", report.read_text(), re.S).group(1))


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_backfills(backfill: dict, headline: dict, text: str) -> None:
    """The idle measurement (single UPDATE, 1 and 2 workers, WAL) and the one with a replica."""
    thr = backfill["throughput"]
    # each on a copy of the same data: the same rows
    assert thr["batched"]["rows"] == thr["batched_2_workers"]["rows"] == thr["single_update"]["rows"] > 0
    assert thr["batched_2_workers"]["workers"] == 2
    for part in ("batched", "batched_2_workers", "single_update"):
        assert number(thr[part]["rows_per_s"]) and thr[part]["wal_bytes"] > 0, thr[part]
    for key in ("backfill_vs_single_update", "backfill_2_workers_vs_single_update", "max_batch_ms",
                "wal_bytes_ratio"):
        assert number(headline[key]), (key, headline)
    assert headline["backfill_2_workers_vs_single_update"] == thr["ratio_2_workers"]
    # no run of 1M rows here: the *_1m figures are not made up from another size
    assert headline["backfill_vs_single_update_1m"] is None
    assert headline["backfill_2_workers_vs_single_update_1m"] is None
    assert "## Batched backfill vs one UPDATE: workers, WAL, replica lag" in text
    replica = backfill["replica"]
    if "unavailable" in replica:    # only when this server cannot have one made here: the report says so
        assert "cannot be made here" in replica["unavailable"], replica
        assert headline["replica_lag_max_bytes"] is None and "no replica: " in text
        return
    for part in ("single_update", "batched"):
        assert replica[part]["rows"] == thr["single_update"]["rows"], replica[part]
        assert number(replica[part]["replica_lag_max_bytes"]) and replica[part]["lag_samples"] > 0, replica[part]
        assert number(replica[part]["replica_caught_up_s"]), replica[part]
    assert set(replica["batched"]["throttle"]) >= {"episodes", "seconds", "by_signal"}
    assert headline["replica_lag_max_bytes"] == replica["batched"]["replica_lag_max_bytes"]


def test_bench_writes_the_report_with_its_headline_figures(tmp_path):
    out = tmp_path / "benchmarks.md"
    bench("--out", str(out))
    headline = headline_of(out)
    assert set(headline) == KEYS and headline["rows"] == ROWS
    assert out.with_suffix(".png").stat().st_size > 10_000
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    seeded = results[0]["counts"]["MetricDaily"]
    # writers' updates go through the transition guard, which places those rows itself
    assert 0 < results[0]["backfill"]["batched"]["rows"] <= seeded
    assert 0 < results[0]["backfill"]["single_update"]["rows"] <= seeded
    check_backfills(results[0]["backfill"], headline, out.read_text())
    # 00_preflight measured before and after migration 1, each query and the whole stage
    for when in ("before_migration_1", "after_migration_1"):
        measured = results[0]["preflight"][when]
        assert measured["stage_result"] == "ok" and measured["exit_code"] == 0, measured
        assert {"counts", "collisions", "unplaceable_users"} <= set(measured["queries_s"])
    assert "## 00_preflight (read-only; seconds)" in out.read_text()
    # the report can be written again from the recorded results
    out.unlink()
    again = subprocess.run([sys.executable, "bench/report.py", str(out.with_suffix(".json"))], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert headline_of(out) == headline

    # --backfill-into: only the backfills measured again (a fresh seed), added to these results
    bench("--backfill-into", str(out.with_suffix(".json")))
    after = json.loads(out.with_suffix(".json").read_text())["results"]
    assert after[0]["enforcement"] == results[0]["enforcement"]          # the rest kept as it was
    assert after[0]["backfill"]["batched"] == results[0]["backfill"]["batched"]
    text, headline = out.read_text(), headline_of(out)
    assert set(headline) == KEYS
    check_backfills(after[0]["backfill"], headline, text)
    for part in ("throughput", "replica"):
        added = after[0]["backfill"][part]
        assert "--backfill-into" in added["added_by"] and added["git_commit"], added
    # the report names the invocation that measured them
    assert re.search(r"Measured by a later invocation .*`bench/run\.py --rows 3000 --backfill-into ", text)
