"""The perf benchmarks KITT runs from suites. Classes only: each `run` imports its
implementation (aiohttp, numpy, prometheus-client) when called, so registering them at
`kitt` start-up stays cheap."""

from __future__ import annotations

from typing import Any

from kitt import Benchmark, BenchmarkContext, Measurement
from kitt_bench_perf.benchmarks import catalog
from kitt_bench_perf.benchmarks.params import (
    LatencyParams,
    LongContextParams,
    MemoryParams,
    StreamingParams,
    SweepParams,
    ThroughputParams,
    WarmupAnalysisParams,
)


class Throughput(Benchmark):
    name = "throughput"
    version = "1"
    description = "Output tokens/s and requests/s at a fixed concurrency (closed loop)."
    Params = ThroughputParams
    metrics = catalog.LOAD
    headline = (
        "output_tokens_per_s", "requests_per_s", "ttft_ms_p50", "e2e_ms_p50", "error_rate")

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        from kitt_bench_perf.benchmarks.loadrun import run_single

        return run_single(context, params)


class Latency(Benchmark):
    name = "latency"
    version = "1"
    description = "Time to first token and end-to-end latency, one request at a time."
    Params = LatencyParams
    metrics = catalog.LOAD
    headline = (
        "ttft_ms_p50", "ttft_ms_p99", "e2e_ms_p50", "e2e_ms_p99", "error_rate")

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        from kitt_bench_perf.benchmarks.loadrun import run_single

        return run_single(context, params)


class StreamingLatency(Benchmark):
    name = "streaming_latency"
    version = "1"
    description = "TTFT, inter-token latency (pooled and per request), TPOT and jitter."
    Params = StreamingParams
    metrics = (*catalog.LOAD, *catalog.JITTER)
    headline = (
        "ttft_ms_p50", "itl_pooled_ms_p50", "itl_pooled_ms_p99", "tpot_ms_mean",
        "itl_jitter_ms_mean")

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        from kitt_bench_perf.benchmarks.loadrun import run_single
        from kitt_bench_perf.benchmarks.streaming import jitter

        return run_single(context, params, jitter)


class ConcurrencySweep(Benchmark):
    name = "concurrency_sweep"
    version = "1"
    description = "Throughput and latency per concurrency level; the best level under an SLO."
    Params = SweepParams
    metrics = catalog.SWEEP
    headline = (
        "best_concurrency", "best_output_tokens_per_s", "best_requests_per_s")

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        from kitt_bench_perf.benchmarks.sweep import run

        return run(context, params)


class MemoryUsage(Benchmark):
    name = "memory_usage"
    version = "1"
    description = ("Engine memory under load: GPU memory (NVML), process-tree RSS (native) "
                   "or container memory (docker); peak and average.")
    Params = MemoryParams
    metrics = (*catalog.MEMORY, *map(catalog.load_spec, catalog.MEMORY_LOAD))
    headline = ("memory_peak_mib", "memory_mean_mib",
                                           "memory_idle_mib")

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        from kitt_bench_perf.benchmarks.memory_usage import run

        return run(context, params)


class WarmupAnalysis(Benchmark):
    name = "warmup_analysis"
    version = "1"
    description = "First requests against steady state; the request where latency stabilizes."
    Params = WarmupAnalysisParams
    metrics = catalog.WARMUP
    headline = (
        "stabilization_index", "cold_start_ratio", "first_latency_ms", "steady_latency_ms")

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        from kitt_bench_perf.benchmarks.warmup_analysis import run

        return run(context, params)


class LongContext(Benchmark):
    name = "long_context"
    version = "1"
    description = "Needle retrieval and latency at several context lengths and depths."
    Params = LongContextParams
    metrics = catalog.LONG_CONTEXT
    headline = ("accuracy_pct", "ttft_ms_max_length")

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        from kitt_bench_perf.benchmarks.long_context import run

        return run(context, params)


ALL: tuple[type[Benchmark], ...] = (Throughput, Latency, StreamingLatency, ConcurrencySweep,
                                    MemoryUsage, WarmupAnalysis, LongContext)
