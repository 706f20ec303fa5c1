#!/usr/bin/env python3
"""Benchmark: is the runbook online and fast at 10 million rows?

    .venv/bin/python bench/run.py                       # small default (200k MetricDaily rows)
    .venv/bin/python bench/run.py --rows 1000000 --rows 10000000

For each size it builds a Data Hub database (embedded server, or the server of DATABASE_URL:
it creates databases there), then measures side by side, on identical copies of the data:
  * the MetricDaily backfill on an idle server: one UPDATE ... FROM vs the runbook's batches with
    1 and with 2 workers (rows/s, longest batch, WAL written);
  * the same with a streaming replica of the server attached (made with the server's own
    pg_basebackup; when it cannot be, the report says why): the replica's replay lag, and the
    time the batches waited for it under the default health limits;
  * writer latency (several connections inserting and updating rows in the tables) during
    both backfills, and during NOT NULL enforcement: the runbook's vs the seed's Option B;
  * the whole runbook from 20_backfill on, through papermill: peak memory of the runner and of
    each kernel, and papermill's own overhead per stage.
It writes docs/benchmarks.md (+ .json, .png). Targets are reported, never asserted.
--backfill-into, --idle-into and --preflight-into measure one part only and add it to an earlier
run's results (the report says which invocation measured what).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tenancy_runbook import archive, db, demo, embedded, spec  # noqa: E402
from tenancy_runbook.errors import GateFailed  # noqa: E402
from tenancy_runbook.locks import DDLLog, RetryPolicy  # noqa: E402
from tenancy_runbook.stages import add_workspace_columns, backfill, enforce_not_null  # noqa: E402

WRITERS = 4
# Every batched run: the default BatchPolicy, each batch bounded to 250 ms (the target) by its
# statement timeout, less the time a cancel takes to end a transaction (up to about 15 ms
# measured): a batch a checkpoint stalls is cancelled and retried with half its span instead
# of holding its rows (README: A hard bound on a batch).
BOUNDED = backfill.BatchPolicy(statement_timeout="200ms")
TWO_WORKERS = dataclasses.replace(BOUNDED, workers=2)


def seed_options(rows: int) -> dict:
    """Seed sizes giving about ``rows`` MetricDaily rows (2 connections x 3 metrics a day)."""
    users = max(40, rows // 1000)
    return {"users": users, "connections_per_user": 2, "metrics_per_day": 3,
            "metric_days": max(1, math.ceil(rows / (users * 6))), "insights_per_user": 4,
            "messages_per_user": 10, "users_without_default": users // 10, "shared_pairs": users // 10}


class Writers:
    """Several connections writing as the application does; every operation's latency kept."""

    instances = itertools.count()   # each instance numbers its rows apart: no duplicate key between runs

    def __init__(self, url: str, sample: list[dict], count: int = WRITERS):
        self.url, self.sample, self.count = url, sample, count
        self.base = next(Writers.instances) * 5_000_000
        self.stop, self.ops, self.errors, self.threads = threading.Event(), [], [], []

    def __enter__(self):
        for k in range(self.count):
            thread = threading.Thread(target=self._run, args=(k,), daemon=True)
            thread.start()
            self.threads.append(thread)
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _run(self, k: int):
        with psycopg.connect(self.url, autocommit=True) as conn:
            for n in range(10**9):
                if self.stop.is_set():
                    return
                row = self.sample[(n * 7 + k) % len(self.sample)]
                op = ("insert_metric", "insert_message", "update_metric", "update_connection")[n % 4]
                params = {"id": f"w{k}_{n}_{uuid.uuid4().hex[:6]}", "n": self.base + n * WRITERS + k,
                          "connection": row["connection_id"], "user": row["user_id"],
                          "workspace": row["workspace_id"]}
                if op == "update_metric":
                    params["id"] = row["metric_id"]
                elif op == "update_connection":
                    params["id"] = row["connection_id"]
                t0 = time.monotonic()
                try:
                    db.execute(conn, f"bench/writer_{op}", params)
                except psycopg.Error as exc:
                    self.errors.append(f"{op}: {str(exc).strip()[:120]}")
                self.ops.append((t0, time.monotonic() - t0))
                time.sleep(0.002)

    def stats(self, start: float, end: float) -> dict:
        """Every statement started while the measured step ran. Call it after the writers have
        stopped: a statement the step blocks is recorded only when it finishes, after the step."""
        assert self.stop.is_set(), "stats() before the writers stopped would miss blocked statements"
        lat = sorted(d for t, d in self.ops if start <= t <= end)
        errors = {"errors": len(self.errors), "error_samples": sorted(set(self.errors))[:3]}
        if not lat:
            return {"ops": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, **errors}
        pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)  # noqa: E731
        return {"ops": len(lat), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(lat[-1] * 1000, 1),
                **errors}


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def build_template(admin: str, rows: int, work: Path | None = None) -> tuple[str, dict]:
    """A database with the data seeded, migration 1 applied and every table but MetricDaily
    backfilled. With ``work``, 00_preflight is measured on it before and after migration 1."""
    name = f"bench_{rows}_{uuid.uuid4().hex[:6]}"
    url = demo.create_database(admin, name)
    demo.load_schema(url)
    counts, seed_s = timed(lambda: demo.seed(url, **seed_options(rows)))
    before = measure_preflight(url, work / f"preflight-{name}-before") if work else None
    with db.connect(url) as conn:
        policy, log = RetryPolicy(), DDLLog()
        add_workspace_columns.apply(conn, policy, "bench", log)
        backfill.install_guard(conn, policy, log)
        for table in spec.active().table_names:
            if table != "MetricDaily":
                backfill.backfill_table(conn, table, backfill.BatchPolicy(), [], progress=False)
    with db.connect(url) as conn, db.outside_transaction(conn):   # VACUUM: no lock_timeout (autovacuum may hold the table)
        db.execute(conn, "bench/vacuum")
    built = {"counts": counts, "seed_s": round(seed_s, 1)}
    if work:
        built["preflight"] = {"before_migration_1": before,
                              "after_migration_1": measure_preflight(url, work / f"preflight-{name}-after")}
    return name, built


PREFLIGHT_QUERIES = ("server", "tables", "privileges", "counts", "collisions", "unplaceable_users")


def measure_preflight(url: str, run_dir: Path) -> dict:
    """00_preflight's queries one by one (a read-only session, as the stage opens it), then the
    whole stage through the runner and papermill (kernel, lint and charts included)."""
    from tenancy_runbook.stages import preflight
    queries = {}
    with db.connect(url, read_only=True) as conn:
        for name in PREFLIGHT_QUERIES:
            if hasattr(preflight, name):
                queries[name] = round(timed(lambda: getattr(preflight, name)(conn))[1], 3)
    proc = subprocess.run([sys.executable, "-m", "tenancy_runbook", "run", str(ROOT / "runbooks/datahub-tenancy.yaml"),
                           "--to", "00_preflight", "--run-dir", str(run_dir)], env={**os.environ, "DATABASE_URL": url},
                          cwd=ROOT, capture_output=True, text=True)
    stage = json.loads((run_dir / "manifest.json").read_text())["stages"][0]
    return {"queries_s": queries, "stage_s": stage["seconds"], "stage_result": stage["result"],
            "exit_code": proc.returncode}


def add_preflight(admin: str, sizes: list[int], results_path: Path, work: Path) -> int:
    """--preflight-into: measure only 00_preflight (before and after migration 1) and add it to
    an earlier run's results, then write its report again."""
    data, by_rows = earlier_results(results_path, sizes)
    for rows in sizes:
        print(f"== {rows:,} MetricDaily rows, 00_preflight only", flush=True)
        template, built = build_template(admin, rows, work)
        demo.drop_database(admin, template)
        print(f"   {built['preflight']}", flush=True)
        by_rows[rows]["preflight"] = {**built["preflight"], "added_by": " ".join(["bench/run.py", *sys.argv[1:]])}
    return rewrite_report(results_path, data)


def copy_of(admin: str, template: str, label: str, statement: str = "bench/create_from_template") -> str:
    name = f"{template}_{label}"
    with db.connect(admin) as conn, db.outside_transaction(conn):
        db.execute(conn, statement, name=name, template=template)
    return db.with_database(admin, name)


def sample(url: str) -> list[dict]:
    """Rows for the writers: 1 % of the pages, or all of them for a small table."""
    with db.connect(url) as conn:
        rows = db.rows(conn, "bench/sample", {"limit": 2000, "percent": 1})
        return rows if len(rows) >= 200 else db.rows(conn, "bench/sample", {"limit": 2000, "percent": 100})


def wal_start(conn) -> str:
    """A CHECKPOINT, then the WAL position an idle measurement starts from."""
    db.execute(conn, "bench/checkpoint")
    return db.one(conn, "bench/wal_position")["lsn"]


def batched_backfill(url: str, writers: Writers | None, policy: backfill.BatchPolicy | None = None,
                     lag: "LagSampler | None" = None) -> dict:
    """The runbook's batches over MetricDaily (``policy``: BOUNDED). Idle (no
    writers): after a CHECKPOINT, with the WAL it wrote. With ``policy.limits`` the health
    throttle watches the server (a replica's lag) and its summary is kept."""
    policy = policy or BOUNDED
    stopped = None
    with db.connect(url) as conn, contextlib.ExitStack() as around:
        since = None if writers else wal_start(conn)
        for helper in (writers, lag):
            if helper:
                around.enter_context(helper)
        steer = backfill.Steer(conn, policy)
        batches = []
        t0 = time.monotonic()
        try:
            done = backfill.backfill_table(conn, "MetricDaily", policy, batches, progress=False, steer=steer)
        except GateFailed as exc:      # the throttle's bound (max_wait_s) passed: what was done stays
            if steer.throttle is None:
                raise
            done, stopped = sum(b["updated"] or 0 for b in batches), str(exc)
        t1 = time.monotonic()
        wal = None if since is None else int(db.one(conn, "bench/wal_since", {"since": since})["bytes"])
    tries, longest_try = len(batches), max(b["ms"] for b in batches)
    batches = [b for b in batches if not b.get("error")]       # the ones that committed
    out = {"rows": done, "seconds": round(t1 - t0, 2), "rows_per_s": round(done / (t1 - t0)),
           "batches": len(batches), "retries": tries - len(batches), "max_batch_ms": max(b["ms"] for b in batches),
           "max_try_ms": longest_try,
           "p50_batch_ms": sorted(b["ms"] for b in batches)[len(batches) // 2]}
    out["batch_statement_timeout"] = policy.statement_timeout
    if policy.workers > 1:
        out["workers"] = policy.workers
        out["batches_per_worker"] = {str(w): sum(b["worker"] == w for b in batches)
                                     for w in range(1, policy.workers + 1)}
    if wal is not None:
        out["wal_bytes"] = wal
    if steer.throttle is not None:
        out["throttle"] = steer.throttle.summary()
    if stopped:
        out["stopped"] = stopped
    if writers:
        out["writers"] = writers.stats(t0, t1)     # after the writers stopped (see stats)
    if lag:
        out.update(lag.result())
    return out


def single_update(url: str, writers: Writers | None, lag: "LagSampler | None" = None) -> dict:
    """sql/bench/single_update.sql in one transaction. Idle (no writers): after a CHECKPOINT,
    with the WAL it wrote."""
    with db.connect(url) as conn, contextlib.ExitStack() as around:
        since = None if writers else wal_start(conn)
        for helper in (writers, lag):
            if helper:
                around.enter_context(helper)
        t0 = time.monotonic()
        done = db.execute(conn, "bench/single_update")
        t1 = time.monotonic()
        wal = None if since is None else int(db.one(conn, "bench/wal_since", {"since": since})["bytes"])
    out = {"rows": done, "seconds": round(t1 - t0, 2), "rows_per_s": round(done / (t1 - t0))}
    if wal is not None:
        out["wal_bytes"] = wal
    if writers:
        out["writers"] = writers.stats(t0, t1)
    if lag:
        out.update(lag.result())
    return out


def on_copies(admin: str, template: str, prefix: str, measures: dict, statement: str = "bench/create_from_template"
              ) -> dict:
    """Each of ``measures`` (label -> measure(url)) on a copy of the template of its own, dropped after."""
    out = {}
    for label, measure in measures.items():
        url = copy_of(admin, template, f"{prefix}_{label}", statement)
        try:
            out[label] = measure(url)
        finally:
            demo.drop_database(admin, f"{template}_{prefix}_{label}")
    return out


def measure_idle(admin: str, template: str) -> dict:
    """Both backfills with nothing else running, each on a copy of its own (--idle-into)."""
    idle = on_copies(admin, template, "idle", {"batched": lambda url: batched_backfill(url, None),
                                               "single_update": lambda url: single_update(url, None)})
    idle["ratio"] = round(idle["batched"]["rows_per_s"] / idle["single_update"]["rows_per_s"], 3)
    return idle


def measure_throughput(admin: str, template: str, repeat: int = 1) -> dict:
    """On an idle server, each on a copy of its own and right after a CHECKPOINT: the batched
    backfill with 1 worker (BOUNDED) and with 2, and the single UPDATE; rows/s,
    longest batch and WAL written, and their ratios to the single UPDATE. With ``repeat`` > 1
    the three run in turn that many times and each keeps its median run by rows/s (every run's
    rows/s listed under ``runs_rows_per_s``): one run of each on this machine varies by 10 to
    20 % from one to the next, a ratio of two single runs by as much."""
    measures = {"batched": lambda url: batched_backfill(url, None),
                "batched_2_workers": lambda url: batched_backfill(url, None, TWO_WORKERS),
                "single_update": lambda url: single_update(url, None)}
    runs = {label: [] for label in measures}
    for i in range(repeat):
        for label, got in on_copies(admin, template, f"thr{i}", measures).items():
            runs[label].append(got)
    out = {}
    for label, got in runs.items():
        ranked = sorted(got, key=lambda r: r["rows_per_s"])
        out[label] = ranked[len(ranked) // 2]
        if repeat > 1:
            out[label]["runs_rows_per_s"] = [r["rows_per_s"] for r in got]
    single = out["single_update"]
    out["ratio"] = round(out["batched"]["rows_per_s"] / single["rows_per_s"], 3)
    out["ratio_2_workers"] = round(out["batched_2_workers"]["rows_per_s"] / single["rows_per_s"], 3)
    out["wal_bytes_ratio"] = round(out["batched"]["wal_bytes"] / single["wal_bytes"], 3)
    if repeat > 1:
        out["repeat"] = repeat
    return out


class LagSampler:
    """The bench replica's replay lag as the primary sees it, every EVERY_S, while a step runs;
    then how long after the step the replica had replayed all it wrote."""

    EVERY_S = 0.1
    CATCH_UP_S = 3600.0

    def __init__(self, admin: str, name: str):
        self.admin, self.name = admin, name
        self.lags: list[int] = []
        self.stop, self.thread, self.error = threading.Event(), None, None
        self.sampling = threading.Event()

    def __enter__(self):
        """Returns once the first sample is taken: a short step is sampled too."""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.sampling.wait(30)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.ended = time.monotonic()

    def _run(self):
        try:
            with db.connect(self.admin) as conn:
                while not self.stop.is_set():
                    lag = db.one(conn, "bench/replica_lag", {"name": self.name})["lag_bytes"]
                    if lag is not None:
                        self.lags.append(int(lag))
                    self.sampling.set()
                    self.stop.wait(self.EVERY_S)
        except Exception as exc:   # noqa: BLE001 - reported with the figures, never hidden
            self.error = f"{type(exc).__name__}: {db.redact(str(exc)).strip()[:200]}"
        finally:
            self.sampling.set()

    def replayed(self) -> float | None:
        """Seconds until the replica has replayed the WAL up to the position now (None: not
        within CATCH_UP_S)."""
        t0 = time.monotonic()
        with db.connect(self.admin) as conn:
            lsn = db.one(conn, "bench/wal_position")["lsn"]
            while not db.one(conn, "bench/replica_replayed", {"lsn": lsn, "name": self.name})["replayed"]:
                if time.monotonic() - t0 > self.CATCH_UP_S:
                    return None
                time.sleep(self.EVERY_S)
        return round(time.monotonic() - t0, 2)

    def result(self) -> dict:
        """After the step: the largest lag sampled, and the seconds from the step's end until
        the replica had replayed everything (waited for now)."""
        since_end = time.monotonic() - self.ended
        caught_up = self.replayed()
        out = {"replica_lag_max_bytes": max(self.lags) if self.lags else None, "lag_samples": len(self.lags),
               "replica_caught_up_s": None if caught_up is None else round(since_end + caught_up, 2)}
        if self.error:
            out["lag_sampler_error"] = self.error
        return out


def measure_replica(admin: str, template: str, server_version: str) -> dict:
    """With a streaming replica of the server attached (replica.start_replica: the server's own
    binaries; it must run on this machine): the single UPDATE, and the batched backfill with the
    default health limits (health.Limits(): it waits while the replica is more than 64 MB behind),
    each on a copy of its own once the replica has replayed the copy. The largest replay lag
    sampled every 100 ms, the time the batches spent throttled, and how long after each step the
    replica had caught up. When no replica can be made here: why."""
    from tenancy_runbook import health, replica as replicas
    try:
        standby = replicas.start_replica(admin, timeout=LagSampler.CATCH_UP_S)
    except replicas.ReplicaError as exc:
        kind = "cannot be made here" if isinstance(exc, replicas.ReplicaUnavailable) else "failed to start"
        why = " ".join(db.redact(str(exc)).split())[:500]     # one line: it goes into a table cell
        return {"unavailable": f"a streaming replica {kind}: {why}"}
    # FILE_COPY (PostgreSQL 15+): the standby copies the template's files instead of replaying them
    statement = ("bench/create_from_template_file_copy" if int(server_version.split(".")[0]) >= 15
                 else "bench/create_from_template")

    def on_replica(measure):
        def run(url: str) -> dict:
            lag = LagSampler(admin, standby.name)
            lag.replayed()                      # the copy itself replayed before the step starts
            return measure(url, lag)
        return run

    try:
        out = on_copies(admin, template, "rep", {
            "single_update": on_replica(lambda url, lag: single_update(url, None, lag)),
            "batched": on_replica(lambda url, lag: batched_backfill(
                url, None, dataclasses.replace(BOUNDED, limits=health.Limits()), lag))}, statement)
    finally:
        standby.stop()
    out["replica"] = f"streaming replica on this machine ({server_version}), replay reported every second"
    return out


def earlier_results(results_path: Path, sizes: list[int]) -> tuple[dict, dict]:
    """An earlier run's results, and its result per size (each of ``sizes`` must be there)."""
    data = json.loads(results_path.read_text())
    by_rows = {r["rows"]: r for r in data["results"]}
    missing = [rows for rows in sizes if rows not in by_rows]
    if missing:
        raise SystemExit(f"{results_path} has no run of {missing} rows (it has {sorted(by_rows)})")
    return data, by_rows


def rewrite_report(results_path: Path, data: dict) -> int:
    from report import write   # bench/report.py
    write(results_path.with_suffix(".md"), data["machine"], data["results"], data["command"])
    print(f"wrote {results_path.with_suffix('.md')}")
    return 0


def add_idle(admin: str, sizes: list[int], results_path: Path) -> int:
    """--idle-into: measure only the idle backfills and add them to an earlier run's results
    (same sizes, same seed), then write its report again; the report says so."""
    data, by_rows = earlier_results(results_path, sizes)
    for rows in sizes:
        print(f"== {rows:,} MetricDaily rows, idle backfills only", flush=True)
        template, _ = build_template(admin, rows)
        idle = measure_idle(admin, template)
        demo.drop_database(admin, template)
        print(f"   batched {idle['batched']['rows_per_s']:,} rows/s, single UPDATE "
              f"{idle['single_update']['rows_per_s']:,} rows/s (ratio {idle['ratio']})", flush=True)
        by_rows[rows]["backfill"]["idle"] = {**idle, "added_by": " ".join(["bench/run.py", *sys.argv[1:]])}
    return rewrite_report(results_path, data)


def measure_backfills(admin: str, template: str, server_version: str, repeat: int = 1) -> dict:
    """The backfills on an idle server (the cost of batching alone; 1 and 2 workers; WAL), with a
    replica attached (its lag, the time throttled), then both again under the writers' load
    (what the application sees; the single UPDATE makes the writers wait, so it has the CPUs to
    itself while the batches share them)."""
    throughput = measure_throughput(admin, template, repeat)
    say_throughput(throughput)
    replica = measure_replica(admin, template, server_version)
    say_replica(replica)
    a, b = copy_of(admin, template, "a"), copy_of(admin, template, "b")
    out = {"batched": batched_backfill(a, Writers(a, sample(a))),
           "single_update": single_update(b, Writers(b, sample(b))), "throughput": throughput, "replica": replica}
    out["ratio"] = round(out["batched"]["rows_per_s"] / out["single_update"]["rows_per_s"], 3)
    return out, a, b


def say_throughput(t: dict) -> None:
    mb = lambda part: round(t[part]["wal_bytes"] / 2**20, 1)  # noqa: E731
    runs = f" (median of {t['repeat']} runs each)" if t.get("repeat") else ""
    print(f"   backfill, idle{runs}: single UPDATE {t['single_update']['rows_per_s']:,} rows/s; batched, 1 worker "
          f"{t['batched']['rows_per_s']:,} rows/s (ratio {t['ratio']}, longest batch {t['batched']['max_batch_ms']} ms); "
          f"2 workers {t['batched_2_workers']['rows_per_s']:,} rows/s (ratio {t['ratio_2_workers']}, longest batch "
          f"{t['batched_2_workers']['max_batch_ms']} ms); WAL MB {mb('single_update')} / {mb('batched')} / "
          f"{mb('batched_2_workers')} (ratio {t['wal_bytes_ratio']})", flush=True)


def say_replica(r: dict) -> None:
    if "unavailable" in r:
        print(f"   replica: none ({r['unavailable']})", flush=True)
        return
    mb = lambda v: None if v is None else round(v / 2**20, 1)  # noqa: E731
    print(f"   with a replica: max lag MB single UPDATE {mb(r['single_update']['replica_lag_max_bytes'])}, batched "
          f"{mb(r['batched']['replica_lag_max_bytes'])} (throttled {r['batched']['throttle']['seconds']} s in "
          f"{r['batched']['throttle']['episodes']} episode(s))", flush=True)


def add_backfill(admin: str, sizes: list[int], results_path: Path, repeat: int = 1) -> int:
    """--backfill-into: measure only the backfills on an idle server (1 and 2 workers, the single
    UPDATE, WAL) and with a replica attached, on a fresh seed of each size, and add them to an
    earlier run's results; then write its report again, which says which invocation (and which
    commit) measured them."""
    data, by_rows = earlier_results(results_path, sizes)
    with db.connect(admin) as conn:
        version = db.one(conn, "archive/server")["server_version"]
    suite = archive.suite()
    by = {"added_by": " ".join(["bench/run.py", *sys.argv[1:]]), "git_commit": suite["git_commit"],
          "git_dirty": suite["git_dirty"], "postgresql": version}
    for rows in sizes:
        print(f"== {rows:,} MetricDaily rows, backfills only (idle: 1 and 2 workers, WAL; with a replica)", flush=True)
        template, _ = build_template(admin, rows)
        try:
            throughput = measure_throughput(admin, template, repeat)
            say_throughput(throughput)
            replica = measure_replica(admin, template, version)
            say_replica(replica)
        finally:
            demo.drop_database(admin, template)
        by_rows[rows]["backfill"]["throughput"] = {**throughput, **by}
        by_rows[rows]["backfill"]["replica"] = {**replica, **by}
    return rewrite_report(results_path, data)


def measure_enforcement(a: str, b: str) -> dict:
    out = {}
    with db.connect(a) as conn, Writers(a, sample(a)) as w:
        log = DDLLog()
        t0 = time.monotonic()
        enforce_not_null.apply(conn, RetryPolicy(), "bench", log)
        t1 = time.monotonic()
        out["runbook"] = {"seconds": round(t1 - t0, 2),
                          "max_lock_held_ms": max(s["held_ms"] for s in log.steps
                                                  if "validate" not in s["step"])}
    out["runbook"]["writers"] = w.stats(t0, t1)
    with db.connect(b) as conn, Writers(b, sample(b)) as w:
        deadlocks = 0
        t0 = time.monotonic()
        while True:   # it takes ACCESS EXCLUSIVE on four tables in turn: writers can deadlock with it
            try:
                db.execute(conn, "bench/seed_option_b")
                break
            except psycopg.errors.DeadlockDetected:
                deadlocks += 1
                if deadlocks > 10:
                    raise
        t1 = time.monotonic()
        out["seed_option_b"] = {"seconds": round(t1 - t0, 2), "deadlocks_retried": deadlocks}
    out["seed_option_b"]["writers"] = w.stats(t0, t1)
    return out


def measure_runbook(admin: str, template: str, work: Path) -> dict:
    """The runbook from 20_backfill on, as an operator runs it; memory sampled every 50 ms."""
    url = copy_of(admin, template, "c")
    run_dir = work / f"run-{template}"
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "tenancy_runbook", "run", str(ROOT / "runbooks/datahub-tenancy.yaml"),
                             "--from", "20_backfill", "--to", "50_post_verify", "--run-dir", str(run_dir)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runner, kernels = psutil.Process(proc.pid), {}
    peak_runner = 0
    while proc.poll() is None:
        try:
            peak_runner = max(peak_runner, runner.memory_info().rss)
            for child in runner.children(recursive=True):
                if "ipykernel_launcher" in " ".join(child.cmdline()):
                    kernels[child.pid] = max(kernels.get(child.pid, 0), child.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    output = proc.stdout.read()
    if proc.returncode:
        raise RuntimeError(f"the runbook failed:\n{output}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stages = []
    for stage in manifest["stages"]:
        nb = json.loads((run_dir / stage["notebook"]).read_text())
        in_cells = sum(c["metadata"].get("papermill", {}).get("duration") or 0 for c in nb["cells"])
        stages.append({"stage": stage["name"], "seconds": stage["seconds"], "in_cells_s": round(in_cells, 2),
                       "papermill_overhead_s": round(stage["seconds"] - in_cells, 2)})
    mb = lambda b: round(b / 2**20, 1)  # noqa: E731
    return {"peak_rss_runner_mb": mb(peak_runner), "peak_rss_kernels_mb": sorted(mb(v) for v in kernels.values()),
            "peak_rss_mb": mb(max([peak_runner, *kernels.values()])), "stages": stages}


def machine(server_version: str) -> dict:
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "postgresql": server_version, "packages": archive.suite()["packages"],
            "git_commit": archive.suite()["git_commit"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="MetricDaily rows (repeat for several sizes; "
                        "default 200000)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--idle-into", type=Path, metavar="RESULTS_JSON",
                        help="measure only the backfills on an idle server and add them to these results")
    parser.add_argument("--preflight-into", type=Path, metavar="RESULTS_JSON",
                        help="measure only 00_preflight (before and after migration 1) and add it to these results")
    parser.add_argument("--backfill-into", type=Path, metavar="RESULTS_JSON",
                        help="measure only the backfills on an idle server (single UPDATE, batches with 1 and 2 "
                             "workers, WAL) and with a streaming replica (lag, time throttled), and add them to "
                             "these results")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run the idle backfills (1 worker, 2 workers, single UPDATE) N times in turn and keep "
                             "each one's median run (ratios of single runs vary by 10 to 20 %% on a small machine)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: give 1 or more runs")
    sizes = sorted(args.rows or [200_000])
    server = None
    admin = os.environ.get("DATABASE_URL")
    if not admin:
        server = embedded.start()
        admin = server.url
    if args.idle_into or args.preflight_into or args.backfill_into:
        try:
            if args.backfill_into:
                return add_backfill(admin, sizes, args.backfill_into, args.repeat)
            if args.idle_into:
                return add_idle(admin, sizes, args.idle_into)
            with tempfile.TemporaryDirectory() as work:
                return add_preflight(admin, sizes, args.preflight_into, Path(work))
        finally:
            if server:
                server.stop()
    results = []
    try:
        with db.connect(admin) as conn:
            version = db.one(conn, "archive/server")["server_version"]
        with tempfile.TemporaryDirectory() as work:
            for rows in sizes:
                print(f"== {rows:,} MetricDaily rows", flush=True)
                template, built = build_template(admin, rows, Path(work))
                print(f"   seeded in {built['seed_s']} s: {built['counts']}", flush=True)
                print(f"   00_preflight: {built['preflight']}", flush=True)
                backfills, a, b = measure_backfills(admin, template, version, args.repeat)
                print(f"   backfill, writers: batched {backfills['batched']['rows_per_s']:,} rows/s, single UPDATE "
                      f"{backfills['single_update']['rows_per_s']:,} rows/s (ratio {backfills['ratio']})", flush=True)
                enforcement = measure_enforcement(a, b)
                print(f"   enforcement: writers max {enforcement['runbook']['writers'].get('max_ms')} ms (runbook) vs "
                      f"{enforcement['seed_option_b']['writers'].get('max_ms')} ms (seed)", flush=True)
                runbook = measure_runbook(admin, template, Path(work))
                print(f"   runbook through papermill: peak RSS {runbook['peak_rss_mb']} MB", flush=True)
                results.append({"rows": rows, **built, "backfill": backfills, "enforcement": enforcement,
                                "runbook": runbook})
                for suffix in ("", "_a", "_b", "_c"):
                    demo.drop_database(admin, template + suffix)
    finally:
        if server:
            server.stop()
    from report import write   # bench/report.py
    write(args.out, machine(version), results, " ".join(["bench/run.py", *sys.argv[1:]]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
