"""Realistic runs for the report and comparison tests: a performance benchmark with request
samples, a concurrency sweep, a memory series and quality scores with standard errors.

Metrics carry the names, units and directions the real plugins declare for them (made
from the benchmarks' own `MetricSpec`s), so a test of the comparison or the report
judges what a real run would hold.

Everything is seeded, so a run built twice is identical; `scale` makes a run slower
(latencies times `scale`, throughput divided by it) to plant regressions.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

from kitt.records import (
    BenchmarkResult,
    EngineConfig,
    Fingerprint,
    ItemRecord,
    Metric,
    RequestSample,
    Run,
)
from kitt_bench_perf.benchmarks import ConcurrencySweep, MemoryUsage, Throughput
from kitt_bench_quality.benchmarks import MMLU, HellaSwag

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def metric(benchmark, name: str, value: float) -> Metric:
    """`name` of the real `benchmark` (a kitt.Benchmark class), as it reports it."""
    spec = benchmark().metric_spec(name)
    assert spec is not None, f"{benchmark.name} reports no metric {name!r}"
    return Metric(name, value, spec.unit, spec.direction)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def perf_result(run_number: int, *, requests: int = 1500, scale: float = 1.0, seed: int = 0,
                name: str = "throughput", params: dict | None = None) -> BenchmarkResult:
    rng = random.Random(seed * 1000 + run_number)
    samples = []
    start = 0.0
    for i in range(requests):
        start += rng.expovariate(1 / (120.0 * scale))  # ~8 requests/s
        if i % 97 == 13:  # ~1% failures, as a busy server gives
            samples.append(RequestSample(start, False, error="HTTP 503: overloaded"))
            continue
        ttft = rng.lognormvariate(math.log(35 * scale), 0.35)
        # ITL drifts up over the window (KV cache filling): the over-time plot shows it.
        itl = (9.0 + start / 60000.0) * scale * rng.uniform(0.9, 1.1)
        out = rng.randint(64, 256)
        samples.append(RequestSample(start, True, ttft_ms=ttft, e2e_ms=ttft + itl * (out - 1),
                                     itl_mean_ms=itl, input_tokens=rng.randint(100, 400),
                                     output_tokens=out))
    ok = [s for s in samples if s.ok]
    window_s = (samples[-1].start_ms + max(s.e2e_ms or 0 for s in ok)) / 1000
    metrics = [metric(Throughput, "requests", float(len(samples))),
               metric(Throughput, "error_rate", (len(samples) - len(ok)) / len(samples)),
               metric(Throughput, "requests_per_s", len(ok) / window_s),
               metric(Throughput, "output_tokens_per_s",
                      sum(s.output_tokens for s in ok) / window_s)]
    for field, prefix in (("ttft_ms", "ttft_ms"), ("e2e_ms", "e2e_ms"),
                          ("itl_mean_ms", "itl_request_mean_ms")):
        values = [getattr(s, field) for s in ok]
        metrics += [metric(Throughput, f"{prefix}_mean", sum(values) / len(values)),
                    metric(Throughput, f"{prefix}_p50", _percentile(values, 0.5)),
                    metric(Throughput, f"{prefix}_p99", _percentile(values, 0.99))]
    started = T0 + timedelta(minutes=run_number)
    return BenchmarkResult(name, "1", run_number, True, metrics=tuple(metrics),
                           params=params or {"concurrency": 8, "max_tokens": 256},
                           started_at=started, finished_at=started + timedelta(seconds=window_s),
                           requests=tuple(samples))


def sweep_result(*, scale: float = 1.0) -> BenchmarkResult:
    """A concurrency sweep with its levels in `details`, as a sweep benchmark reports."""
    levels = [1, 2, 4, 8, 16, 32]
    sweep = [{"load": f"concurrency-{c}", "concurrency": c,
              "summary": {"output_tokens_per_s": 110 * c / (1 + c / 12) / scale,
                          "ttft_ms": {"p50": 30 * scale * (1 + c / 16)}}}
             for c in levels]
    return BenchmarkResult("concurrency_sweep", "1", 1, True,
                           metrics=(metric(ConcurrencySweep, "best_output_tokens_per_s",
                                           max(p["summary"]["output_tokens_per_s"]
                                               for p in sweep)),),
                           params={"levels": levels}, details={"sweep": sweep},
                           started_at=T0, finished_at=T0 + timedelta(minutes=3))


def memory_result(*, scale: float = 1.0) -> BenchmarkResult:
    series = [[t / 2, round(2000 + 5200 * (1 - math.exp(-t / 12)) * scale
                            + 40 * math.sin(t), 1)] for t in range(120)]
    return BenchmarkResult("memory_usage", "1", 1, True,
                           metrics=(metric(MemoryUsage, "memory_peak_mib",
                                           max(v for _, v in series)),),
                           details={"memory": {"rss": series}, "unit": "MiB"},
                           started_at=T0, finished_at=T0 + timedelta(minutes=1))


def quality_results(run_number: int, *, delta: float = 0.0) -> tuple[BenchmarkResult, ...]:
    items = tuple(ItemRecord(f"q{i}", i % 3 != 0, target="A", prompt=f"question {i}",
                             output="A" if i % 3 else "B", subject="math") for i in range(30))
    mmlu = BenchmarkResult(
        "mmlu", "2", run_number, True,
        metrics=(metric(MMLU, "acc", 0.652 + delta + 0.002 * run_number),
                 metric(MMLU, "acc_stderr", 0.012), metric(MMLU, "n_items", 1400.0)),
        items=items)
    hellaswag = BenchmarkResult(
        "hellaswag", "1", run_number, True,
        metrics=(metric(HellaSwag, "acc", 0.561 + delta),
                 metric(HellaSwag, "acc_stderr", 0.005),
                 metric(HellaSwag, "acc_norm", 0.743 + delta),
                 metric(HellaSwag, "acc_norm_stderr", 0.004)))
    return mmlu, hellaswag


def make_run(run_id: str = "a1b2c3d4e5f6", *, scale: float = 1.0, quality_delta: float = 0.0,
             repeats: int = 3, requests: int = 1500, engine: str = "llamacpp",
             started: datetime = T0, failed_benchmark: bool = False) -> Run:
    results: list[BenchmarkResult] = []
    for rep in range(1, repeats + 1):
        results.append(perf_result(rep, requests=requests, scale=scale))
    results.append(sweep_result(scale=scale))
    results.append(memory_result(scale=scale))
    for rep in range(1, repeats + 1):
        results.extend(quality_results(rep, delta=quality_delta))
    if failed_benchmark:
        results.append(BenchmarkResult("gsm8k", "1", 1, False,
                                       error="engine returned HTTP 500 on item 17",
                                       details={"traceback": "Traceback...\nRuntimeError: x"}))
    return Run(
        id=run_id, model="Qwen2.5-0.5B-Instruct-Q4_K_M.gguf",
        engine=EngineConfig(engine, mode="docker", image="ghcr.io/ggml-org/llama.cpp:server"),
        suite="standard", status="failed" if failed_benchmark else "passed",
        started_at=started, finished_at=started + timedelta(minutes=14, seconds=7),
        kitt_version="0.1.0", engine_version="b4500",
        hardware=Fingerprint("rtx4090-24gb_i9-13900k_64gb-ddr5_nvme_ubuntu24.04"),
        config={"suite": "standard"}, results=tuple(results),
    )
