"""KARR query speed on a large store: 100,000 runs of ~20 metrics each.

    python bench/storage.py [--runs 100000] [--repeat 7] [--backends sqlite,postgresql]
                            [--out FILE]

Fills a fresh store per backend with bulk inserts (`Store.save_runs` in batches), then
times each query `--repeat` times and reports the median, min and max in milliseconds,
then the write path on the full store: saving one new run, replacing one, deleting one.
The load average is recorded before and after each backend: on a shared machine, compare
figures taken under similar load. PostgreSQL uses KITT_TEST_POSTGRES_URL, in a schema
`kitt_bench` dropped afterwards; it is skipped (and said so in the output) when that
variable is unset.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
from _output import emit  # bench/ (the script's folder) is on sys.path

from kitt._compare.compare import compare_runs
from kitt._storage.contract import RunFilter
from kitt._storage.open import open_store
from kitt.records import BenchmarkResult, EngineConfig, Fingerprint, Metric, RequestSample, Run

MODELS = [f"model-{i}" for i in range(10)]
ENGINES = ["llamacpp", "vllm", "tgi", "ollama"]
SUITES = ["quick", "standard", "full"]
FINGERPRINTS = ["rtx4090-x86-64g", "h100-x86-512g", "m3max-arm-128g"]
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def make_run(i: int, rng: random.Random) -> Run:
    """4 benchmark results of 5 metrics each (20 metrics), like a small performance suite."""
    results = tuple(
        BenchmarkResult(
            name, "1", 1, rng.random() > 0.05,
            metrics=tuple(Metric(f"{name}_m{k}", rng.gauss(100 + 10 * k, 5), "ms")
                          for k in range(5)),
            params={"concurrency": 4},
        )
        for name in ("throughput", "latency", "ttft", "memory")
    )
    return Run(
        id=f"{i:08d}-{rng.getrandbits(64):016x}", model=MODELS[i % len(MODELS)],
        engine=EngineConfig(ENGINES[i // 10 % len(ENGINES)], mode="docker",
                            image="ghcr.io/example/engine:1"),
        suite=SUITES[i // 40 % len(SUITES)],
        status="passed" if all(r.passed for r in results) else "failed",
        started_at=T0 + timedelta(minutes=5 * i), kitt_version="0.1.0",
        hardware=Fingerprint(FINGERPRINTS[i // 120 % len(FINGERPRINTS)]),
        finished_at=T0 + timedelta(minutes=5 * i + 3), engine_version="b4000",
        config={"suite": "x", "seed": i}, results=results,
    )


def fill(store, count: int, batch: int = 2000) -> float:
    rng = random.Random(42)
    start = time.perf_counter()
    for first in range(0, count, batch):
        store.save_runs(make_run(i, rng) for i in range(first, min(first + batch, count)))
    return time.perf_counter() - start


def timed(fn, repeat: int) -> dict:
    fn()  # warm caches once, as a store in use would be
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
            "max_ms": round(max(times), 2)}


def with_samples(run: Run, count: int) -> Run:
    """`run` with `count` request samples per result, as a real performance run has: the
    document grows to megabytes, the metrics do not."""
    samples = tuple(RequestSample(i * 10.0, True, ttft_ms=30.0 + i % 17, e2e_ms=900.0 + i % 91,
                                  itl_mean_ms=9.5, input_tokens=200, output_tokens=128)
                    for i in range(count))
    return attrs.evolve(run, id=f"samples-{run.id}", results=tuple(
        attrs.evolve(result, requests=samples) for result in run.results))


def _compare(store, refs: list[str]):
    """`kitt results compare` minus printing; stores without `comparison_values` (before
    schema 3) compared whole documents."""
    from kitt import compare

    if hasattr(compare, "compare_stored"):
        return compare.compare_stored(store, refs)
    return compare.compare_runs([store.get_run(ref) for ref in refs])


def queries(store, count: int) -> dict:
    ids = [s.id for s in store.list_runs(RunFilter(model="model-3"), limit=5000)]
    rng = random.Random(7)
    picks = iter(rng.choice(ids) for _ in range(10_000))
    five = rng.sample(ids, 5)
    heavy = [with_samples(store.get_run(run_id), 5000) for run_id in five]
    store.save_runs(heavy)
    heavy_ids = [run.id for run in heavy]
    return {
        "list --model M --limit 50": lambda: store.list_runs(RunFilter(model="model-3"),
                                                             limit=50),
        "list --engine E --status failed --limit 50": lambda: store.list_runs(
            RunFilter(engine="vllm", status="failed"), limit=50),
        "list --since D --until D --limit 50": lambda: store.list_runs(
            RunFilter(since=T0 + timedelta(days=100), until=T0 + timedelta(days=200)),
            limit=50),
        "show RUN": lambda: store.get_run(next(picks)),
        "show PREFIX": lambda: store.get_run(next(picks)[:12]),
        "compare 5 runs": lambda: _compare(store, five),
        "compare 5 runs of 20,000 request samples each": lambda: _compare(store, heavy_ids),
        "compare the same 5 from whole documents (as before schema 3)": lambda: compare_runs(
            [store.get_run(run_id) for run_id in heavy_ids]),
        "aggregate by model+engine, --model M": lambda: store.aggregate(
            RunFilter(model="model-3"), ["model", "engine"]),
        "aggregate by model+engine, --suite S --since 30 days": lambda: store.aggregate(
            RunFilter(suite="quick", since=T0 + timedelta(minutes=5 * count) -
                      timedelta(days=30)), ["model", "engine"]),
        "aggregate by model+engine, whole store": lambda: store.aggregate(
            group_by=["model", "engine"]),
    }


def writes(store, count: int) -> dict:
    """One run at a time, as `kitt run` saves: a new id, an existing id (replaced), and a
    delete. Each operation is its own transaction, so these include the commit (and on
    SQLite the fsync of synchronous=FULL)."""
    rng = random.Random(11)
    new_ids = iter(range(count, count * 2))
    saved: list[str] = []
    replaced = iter(s.id for s in store.list_runs(limit=500, offset=1000))

    def save_new():
        run = make_run(next(new_ids), rng)
        store.save_run(run)
        saved.append(run.id)

    def replace():
        run_id = next(replaced)  # same id and group, new values: the old ones must go
        store.save_run(attrs.evolve(make_run(int(run_id[:8]), rng), id=run_id))

    return {
        "save_run, new id": save_new,
        "save_run, replacing a stored run": replace,
        "delete_run": lambda: store.delete_run(saved.pop()),
    }


def bench_backend(url: str, count: int, repeat: int) -> dict:
    with open_store(url) as store:
        fill_s = fill(store, count)
        stats = store.stats()
        out = {"url": store.url, "runs": stats["counts"]["runs"],
               "metrics": stats["counts"]["metrics"], "fill_s": round(fill_s, 1),
               "loadavg_before": os.getloadavg(), "queries": {}, "writes": {}}
        for name, fn in queries(store, count).items():
            out["queries"][name] = timed(fn, repeat)
            print(f"  {name}: {out['queries'][name]}", file=sys.stderr)
        for name, fn in writes(store, count).items():
            out["writes"][name] = timed(fn, repeat * 3)
            print(f"  {name}: {out['writes'][name]}", file=sys.stderr)
        out["loadavg_after"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform()},
              "runs": args.runs, "repeat": args.repeat, "backends": {}}
    for backend in args.backends.split(","):
        print(f"{backend}: filling {args.runs} runs", file=sys.stderr)
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                report["backends"]["sqlite"] = bench_backend(f"sqlite://{tmp}/bench.db",
                                                             args.runs, args.repeat)
                report["backends"]["sqlite"]["file_mib"] = round(
                    sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20, 1)
        elif backend == "postgresql":
            base = os.environ.get("KITT_TEST_POSTGRES_URL")
            if not base:
                report["backends"]["postgresql"] = {"skipped": "KITT_TEST_POSTGRES_URL unset"}
                continue
            import psycopg

            sep = "&" if "?" in base else "?"
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute("DROP SCHEMA IF EXISTS kitt_bench CASCADE")
            try:
                report["backends"]["postgresql"] = bench_backend(
                    f"{base}{sep}schema=kitt_bench", args.runs, args.repeat)
            finally:
                with psycopg.connect(base, autocommit=True) as conn:
                    conn.execute("DROP SCHEMA IF EXISTS kitt_bench CASCADE")
    emit(report, args.out)


if __name__ == "__main__":
    main()
