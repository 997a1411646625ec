"""concurrency_sweep: one load per concurrency level, then the best level under the SLO.

A level *qualifies* when its error rate is within `max_error_rate` and, if any slo_*
limit is set, at least `slo_attainment` of its requests meet every limit. The best
concurrency is the qualifying level with the highest output tokens/s (the lower level on
a tie). With no SLO every level within the error budget qualifies.
"""

from __future__ import annotations

from typing import Any

import attrs

from kitt import BenchmarkContext, Measurement, Metric
from kitt_bench_perf.benchmarks import catalog, common
from kitt_bench_perf.benchmarks.loadrun import load_spec, measure, prepare
from kitt_bench_perf.benchmarks.params import SweepParams
from kitt_bench_perf.metrics import Summary


def qualifies(summary: Summary, params: SweepParams) -> bool:
    if summary.requests == 0 or summary.error_rate > params.max_error_rate:
        return False
    if summary.slo_met is None:
        return True
    return summary.slo_met / summary.requests >= params.slo_attainment


def best_level(levels: list[dict[str, Any]]) -> dict[str, Any] | None:
    candidates = [lv for lv in levels if lv["meets_slo"]]
    if not candidates:
        return None
    return max(candidates, key=lambda lv: (lv["output_tokens_per_s"] or 0.0,
                                           -lv["concurrency"]))


def run(context: BenchmarkContext, params: SweepParams) -> Measurement:
    per_level = params.requests + params.warmup_requests
    total = per_level * len(params.levels)
    context.progress(0, total)
    prepared = prepare(context, params, per_level)
    levels: list[dict[str, Any]] = []
    metrics: list[Metric] = []
    samples = []
    warnings: list[str] = []
    server: dict[str, Any] = {}
    t_first: int | None = None
    for i, concurrency in enumerate(params.levels):
        outcome = measure(context, params, prepared, load_spec(params, concurrency))
        t_first = outcome.window_start_ns if t_first is None else t_first
        s = outcome.summary
        by_name = {m.name: m for m in outcome.metrics}
        level = {"load": f"concurrency-{concurrency}", "concurrency": concurrency,
                 "output_tokens_per_s": s.output_tokens_per_s,
                 "requests_per_s": s.requests_per_s, "error_rate": s.error_rate,
                 "slo_met": s.slo_met, "meets_slo": qualifies(s, params),
                 "summary": outcome.details["summary"],
                 "token_counting": outcome.details["token_counting"],
                 "client_health": outcome.details["client_health"]}
        levels.append(level)
        metrics.extend(attrs.evolve(by_name[name], name=f"concurrency_{concurrency}.{name}")
                       for name in catalog.SWEEP_LEVEL if name in by_name)
        # Samples of every level on one time axis: ms from the first level's window.
        samples.extend(common.request_samples(outcome.records, t_first))
        warnings += [f"concurrency {concurrency}: {w}" for w in outcome.warnings]
        if "server_metrics" in outcome.details:
            server[f"concurrency-{concurrency}"] = outcome.details["server_metrics"]
        context.progress(per_level * (i + 1), total)
    best = best_level(levels)
    if best is not None:
        metrics[:0] = [catalog.BEST_CONCURRENCY(best["concurrency"]),
                       catalog.BEST_OUTPUT_TOKENS_PER_S(best["output_tokens_per_s"] or 0.0),
                       catalog.BEST_REQUESTS_PER_S(best["requests_per_s"] or 0.0)]
    slo = common.slo_of(params)
    details = {"sweep": levels, "best_concurrency": best["concurrency"] if best else None,
               "rule": "highest output_tokens_per_s among levels meeting the SLO and "
                       "error budget; ties go to the lower concurrency",
               "slo": attrs.asdict(slo) if slo else None,
               "slo_attainment": params.slo_attainment, "api": prepared.endpoint.route.value,
               "workload": common.workload_details(prepared.specs),
               "prompt_tokenizer": prepared.tokenizer_kind}
    if server:
        details["server_metrics"] = server
    return Measurement(metrics=tuple(metrics), passed=best is not None,
                       requests=tuple(samples), details=common.jsonable(details),
                       warnings=tuple(warnings))
