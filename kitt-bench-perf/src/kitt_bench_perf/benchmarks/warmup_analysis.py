"""warmup_analysis: sequential requests from the first one on; where latency settles.

The rule (docs/perf-benchmarks.md): with latencies x_0..x_{n-1} (e2e or TTFT, ms, in
send order), window w and tolerance tol:
  steady-state reference M = median(x_{floor(n/2)} .. x_{n-1})  (the second half)
  rolling median m_k = median(x_k .. x_{k+w-1}), k = 0 .. n-w
  stabilization index s = the smallest k such that |m_j - M| <= tol * M for every j >= k;
  none when even the last window is outside the band.
"""

from __future__ import annotations

import statistics
from typing import Any

import attrs

from kitt import BenchmarkContext, Measurement, Metric
from kitt_bench_perf.benchmarks import catalog, common
from kitt_bench_perf.benchmarks.loadrun import measure, prepare
from kitt_bench_perf.benchmarks.params import WarmupAnalysisParams
from kitt_bench_perf.load import LoadSpec, Sequential
from kitt_bench_perf.metrics import check_error_rate, request_metrics


@attrs.frozen
class Stabilization:
    index: int | None
    reference: float
    rolling: list[float]


def stabilization(values: list[float], window: int, tolerance: float) -> Stabilization:
    n = len(values)
    if n < 2 * window or window < 1:
        raise ValueError(f"need at least 2 * window ({2 * window}) values, got {n}")
    reference = statistics.median(values[n // 2:])
    rolling = [statistics.median(values[k:k + window]) for k in range(n - window + 1)]
    band = tolerance * reference
    index = None
    for k in range(len(rolling) - 1, -1, -1):  # walk back while the medians stay in band
        if abs(rolling[k] - reference) > band:
            break
        index = k
    return Stabilization(index, reference, rolling)


def run(context: BenchmarkContext, params: WarmupAnalysisParams) -> Measurement:
    context.progress(0, params.requests)
    # Every request measured, none discarded: the first ones are the point.
    params = attrs.evolve(params, warmup_requests=0)
    prepared = prepare(context, params, params.requests)
    outcome = measure(context, params, prepared,
                      LoadSpec(Sequential(), max_requests=params.requests))
    context.progress(params.requests, params.requests)
    field = "ttft_ms" if params.latency == "ttft" else "e2e_ms"
    values = [getattr(request_metrics(r), field) for r in outcome.records if r.ok]
    values = [v for v in values if v is not None]
    check = check_error_rate(outcome.summary, params.max_error_rate)
    metrics: list[Metric] = []
    details: dict[str, Any] = {"rule": __doc__.split("The rule", 1)[1].strip(),
                               "latency": params.latency, "window": params.window,
                               "tolerance": params.tolerance,
                               "latency_ms": values}
    passed = check.passed
    if len(values) >= 2 * params.window:
        found = stabilization(values, params.window, params.tolerance)
        details.update(reference_ms=found.reference, rolling_median_ms=found.rolling,
                       stabilization_index=found.index)
        metrics += [catalog.FIRST_LATENCY(values[0]), catalog.STEADY_LATENCY(found.reference),
                    catalog.COLD_START_RATIO(values[0] / found.reference
                                             if found.reference > 0 else 0.0)]
        if found.index is not None:
            metrics.append(catalog.STABILIZATION_INDEX(found.index))
            if found.index > 0:
                head = values[:found.index]
                metrics.append(catalog.WARMUP_LATENCY(sum(head) / len(head)))
    else:
        passed = False
        details["problem"] = (f"only {len(values)} successful requests; the analysis needs "
                              f"2 * window = {2 * params.window}")
    by_name = {m.name: m for m in outcome.metrics}
    metrics += [by_name[n] for n in catalog.WARMUP_LOAD if n in by_name]
    details.update(load=outcome.details["load"], summary=outcome.details["summary"],
                   token_counting=outcome.details["token_counting"],
                   client_health=outcome.details["client_health"],
                   checks=[attrs.asdict(check)])
    if "server_metrics" in outcome.details:
        details["server_metrics"] = outcome.details["server_metrics"]
    return Measurement(metrics=tuple(metrics), passed=passed,
                       requests=tuple(common.request_samples(outcome.records,
                                                             outcome.window_start_ns)),
                       details=common.jsonable(details), warnings=outcome.warnings)
