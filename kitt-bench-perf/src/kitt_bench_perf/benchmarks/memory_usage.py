"""memory_usage: the engine's memory while idle and under a concurrency load.

Per series (`rss`, `container_memory`, `gpu<i>_memory`): `<series>_idle_mib` (mean of the
samples before the load), `<series>_peak_mib` and `<series>_mean_mib` (max and mean of the
samples from the load's start to its end). `memory_*_mib` repeat the primary source: the
GPUs' total when there are GPUs, else the container, else the process tree.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from kitt import BenchmarkContext, KittError, Measurement, Metric, MetricSpec
from kitt_bench_perf.benchmarks import catalog, common
from kitt_bench_perf.benchmarks.loadrun import load_spec, measure, prepare
from kitt_bench_perf.benchmarks.params import MemoryParams
from kitt_bench_perf.memory import ContainerMemory, ProcessTreeRss, Sampler, gpu_memory
from kitt_bench_perf.metrics import check_error_rate


def sources_for(context: BenchmarkContext) -> list[Any]:
    target = context.target
    sources: list[Any] = []
    gpu = gpu_memory()
    if gpu is not None:
        sources.append(gpu)
    if target.container_id:
        sources.append(ContainerMemory(target.container_id))
    elif target.pid:
        sources.append(ProcessTreeRss(target.pid))
    if not sources:
        raise KittError("memory_usage has nothing to measure: no GPU, and the engine is "
                        "neither a local process nor a container KITT started",
                        hint="let KITT launch the engine (no --url), or run on a GPU host")
    return sources


def stats(points: list[tuple[int, dict[str, float]]], load_start: int
          ) -> dict[str, dict[str, float]]:
    """{series: {idle, peak, mean}} from the sampler's points."""
    before: dict[str, list[float]] = {}
    during: dict[str, list[float]] = {}
    for t, values in points:
        for name, mib in values.items():
            (before if t < load_start else during).setdefault(name, []).append(mib)
    out = {}
    for name, values in during.items():
        idle = before.get(name) or values[:1]
        out[name] = {"idle": sum(idle) / len(idle), "peak": max(values),
                     "mean": sum(values) / len(values)}
    return out


def primary(per_series: dict[str, dict[str, float]]) -> tuple[str, dict[str, float]] | None:
    gpus = [v for k, v in per_series.items() if k.startswith("gpu")]
    if gpus:
        return "gpu_total", {s: sum(v[s] for v in gpus) for s in ("idle", "peak", "mean")}
    for name in ("container_memory", "rss"):
        if name in per_series:
            return name, per_series[name]
    return None


def _memory_metric(name: str, mib: float) -> Metric:
    spec: MetricSpec = next(s for s in catalog.MEMORY if s.matches(name))
    return Metric(name, mib, spec.unit, spec.direction)


def run(context: BenchmarkContext, params: MemoryParams) -> Measurement:
    total = params.requests + params.warmup_requests
    context.progress(0, total)
    sources = sources_for(context)
    prepared = prepare(context, params, total)
    sampler = Sampler(sources, params.sample_interval_s)
    t_start = time.perf_counter_ns()
    sampler.start()
    try:
        time.sleep(params.idle_s)
        load_start = time.perf_counter_ns()
        outcome = measure(context, params, prepared, load_spec(params, params.concurrency))
    finally:
        sampler.stop()
        for source in sources:
            getattr(source, "close", lambda: None)()
    context.progress(total, total)
    per_series = stats(sampler.points, load_start)
    metrics: list[Metric] = []
    main = primary(per_series)
    series = {"memory": main[1]} if main is not None else {}
    for name, values in {**series, **per_series}.items():
        metrics.extend(_memory_metric(f"{name}_{s}_mib", values[s])
                       for s in ("peak", "mean", "idle"))
    by_name = {m.name: m for m in outcome.metrics}
    metrics.extend(by_name[n] for n in catalog.MEMORY_LOAD if n in by_name)
    check = check_error_rate(outcome.summary, params.max_error_rate)
    passed = check.passed and main is not None
    details: dict[str, Any] = {
        "unit": "MiB",
        # Plotted by the report as memory over time: seconds from the first sample.
        "memory": sampler.series(t_start),
        "sampling": {"sources": [s.name for s in sources],
                     "interval_s": params.sample_interval_s, "idle_s": params.idle_s,
                     "load_start_s": round((load_start - t_start) / 1e9, 4),
                     "samples": len(sampler.points), "errors": sampler.errors,
                     "primary": main[0] if main else None,
                     "pids": sorted(getattr(sources[-1], "pids", ()))},
        "load": outcome.details["load"], "summary": outcome.details["summary"],
        "token_counting": outcome.details["token_counting"],
        "client_health": outcome.details["client_health"],
        "checks": [attrs.asdict(check)],
    }
    if "server_metrics" in outcome.details:
        details["server_metrics"] = outcome.details["server_metrics"]
    return Measurement(metrics=tuple(metrics), passed=passed,
                       requests=tuple(common.request_samples(outcome.records,
                                                             outcome.window_start_ns)),
                       details=common.jsonable(details), warnings=outcome.warnings)
