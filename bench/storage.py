"""KARR query speed on a large store: 100,000 runs of ~20 metrics each.

    python bench/storage.py [--runs 100000] [--repeat 7] [--backends sqlite,postgresql]
                            [--out FILE]

Fills a fresh store per backend with bulk inserts (`Store.save_runs` in batches), then
times each query `--repeat` times and reports the median, min and max in milliseconds.
PostgreSQL uses KITT_TEST_POSTGRES_URL, in a schema `kitt_bench` dropped afterwards; it is
skipped (and said so in the output) when that variable is unset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kitt.model import BenchmarkResult, EngineConfig, Fingerprint, Metric, Run
from kitt.storage import RunFilter, open_store

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


def queries(store, count: int) -> dict:
    ids = [s.id for s in store.list_runs(RunFilter(model="model-3"), limit=5000)]
    rng = random.Random(7)
    picks = iter(rng.choice(ids) for _ in range(10_000))
    five = rng.sample(ids, 5)
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
        "compare 5 runs": lambda: store.compare(five),
        "aggregate by model+engine, --model M": lambda: store.aggregate(
            RunFilter(model="model-3"), ["model", "engine"]),
        "aggregate by model+engine, --suite S --since 30 days": lambda: store.aggregate(
            RunFilter(suite="quick", since=T0 + timedelta(minutes=5 * count) -
                      timedelta(days=30)), ["model", "engine"]),
        "aggregate by model+engine, whole store": lambda: store.aggregate(
            group_by=["model", "engine"]),
    }


def bench_backend(url: str, count: int, repeat: int) -> dict:
    with open_store(url) as store:
        fill_s = fill(store, count)
        stats = store.stats()
        out = {"url": store.url, "runs": stats["counts"]["runs"],
               "metrics": stats["counts"]["metrics"], "fill_s": round(fill_s, 1),
               "queries": {}}
        for name, fn in queries(store, count).items():
            out["queries"][name] = timed(fn, repeat)
            print(f"  {name}: {out['queries'][name]}", file=sys.stderr)
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
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
