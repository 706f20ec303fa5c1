"""bench/run.py keeps working (a tiny size; its figures are read, never asserted on)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tenancy_runbook.paths import ROOT

KEYS = {"rows", "backfill_vs_single_update", "max_batch_ms", "writer_max_wait_ms_enforce",
        "writer_max_wait_ms_enforce_seed", "writer_p99_ms_backfill", "peak_rss_mb"}


def test_bench_writes_the_report_with_its_headline_figures(tmp_path):
    out = tmp_path / "benchmarks.md"
    env = {k: v for k, v in __import__("os").environ.items() if k != "DATABASE_URL"}
    result = subprocess.run([sys.executable, "bench/run.py", "--rows", "3000", "--out", str(out)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    text = out.read_text()
    headline = json.loads(re.search(r"```json\n(.*?)\n```", text, re.S).group(1))
    assert set(headline) == KEYS and headline["rows"] == 3000
    assert out.with_suffix(".png").stat().st_size > 10_000
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    seeded = results[0]["counts"]["MetricDaily"]
    # writers' updates go through the transition guard, which places those rows itself
    assert 0 < results[0]["backfill"]["batched"]["rows"] <= seeded
    assert 0 < results[0]["backfill"]["single_update"]["rows"] <= seeded
    # on an idle server both backfills start from the same copy of the data: the same rows
    idle = results[0]["backfill"]["idle"]
    assert idle["batched"]["rows"] == idle["single_update"]["rows"] > 0
    # 00_preflight measured before and after migration 1, each query and the whole stage
    for when in ("before_migration_1", "after_migration_1"):
        measured = results[0]["preflight"][when]
        assert measured["stage_result"] == "ok" and measured["exit_code"] == 0, measured
        assert {"counts", "collisions", "unplaceable_users"} <= set(measured["queries_s"])
    assert "## 00_preflight (read-only; seconds)" in text
    # the report can be written again from the recorded results
    out.unlink()
    again = subprocess.run([sys.executable, "bench/report.py", str(out.with_suffix(".json"))], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(re.search(r"```json\n(.*?)\n```", out.read_text(), re.S).group(1)) == headline
