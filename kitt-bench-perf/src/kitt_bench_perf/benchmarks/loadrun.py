"""One measured load, end to end: workload -> load (+ /metrics scraping) -> token counts
-> summary -> KITT metrics, samples and details. Every load benchmark is built on it."""

from __future__ import annotations

from typing import Any

import attrs

from kitt import BenchmarkContext, Measurement, Metric, Tokenizer
from kitt_bench_perf.benchmarks import catalog, common
from kitt_bench_perf.benchmarks.params import LoadParams
from kitt_bench_perf.health import arrival_of, assess
from kitt_bench_perf.load import Concurrency, LoadSpec, Sequential
from kitt_bench_perf.metrics import Summary, check_error_rate, summarize
from kitt_bench_perf.records import RequestRecord


@attrs.frozen
class Prepared:
    """What is built once per benchmark run (a sweep reuses it for every level)."""

    endpoint: Any
    specs: list
    tokenizer: Tokenizer
    tokenizer_kind: str


@attrs.frozen
class LoadOutcome:
    records: tuple[RequestRecord, ...]
    summary: Summary
    details: dict[str, Any]
    metrics: list[Metric]
    window_start_ns: int
    warnings: tuple[str, ...] = ()
    """The client-limited verdict, when it applies (`health.assess`)."""


def prepare(context: BenchmarkContext, params: LoadParams, count: int) -> Prepared:
    endpoint = common.endpoint_for(context.target, params.endpoint,
                                   ignore_eos=params.ignore_eos,
                                   temperature=params.temperature)
    tokenizer, kind = common.prompt_tokenizer(context.target)
    specs = common.synthetic_workload(tokenizer, count, params.prompt_tokens,
                                      params.max_tokens, context.seed)
    return Prepared(endpoint, specs, tokenizer, kind)


def load_spec(params: LoadParams, concurrency: int) -> LoadSpec:
    profile = Sequential() if concurrency == 1 else Concurrency(concurrency)
    return LoadSpec(profile, max_requests=params.requests + params.warmup_requests,
                    duration_s=params.duration_s, warmup_requests=params.warmup_requests,
                    workers=min(params.workers, concurrency))


def measure(context: BenchmarkContext, params: LoadParams, prepared: Prepared,
            load: LoadSpec) -> LoadOutcome:
    result, scraper = common.run_measured(
        context.target, prepared.endpoint, prepared.specs, load,
        timeout_s=params.timeout_s, scrape_interval_s=params.scrape_interval_s,
        prewarm_connections=params.prewarm_connections)
    records = common.count_missing_tokens(result.records, prepared.tokenizer,
                                          prepared.tokenizer_kind)
    summary = summarize(records, common.slo_of(params))
    t0 = summary.window_start_ns if summary.window_start_ns is not None else result.t0_ns
    metrics = common.summary_metrics(summary)
    verdict = assess(result.client, params.client_lag_bound_ms, arrival_of(records))
    health = verdict.details
    if health["loop_lag_ms"] is not None:
        metrics.append(catalog.CLIENT_BY_NAME["client_loop_lag_ms_p99"](
            health["loop_lag_ms"]["p99"]))
    metrics += [catalog.CLIENT_BY_NAME["client_cpu_cores_max"](health["cpu_cores_max"]),
                catalog.CLIENT_BY_NAME["client_limited"](float(verdict.client_limited))]
    details: dict[str, Any] = {
        "api": prepared.endpoint.route.value,
        "load": common.load_details(result),
        "workload": common.workload_details(prepared.specs),
        "token_counting": common.token_counting(records, prepared.tokenizer_kind),
        "summary": summary.to_dict(),
        "client_health": health,
    }
    if scraper is not None:
        details["server_metrics"] = scraper.details(t0)
        metrics.extend(catalog.SERVER_BY_NAME[name](value)
                       for name, value in scraper.key_metrics())
    warning = verdict.warning
    return LoadOutcome(records, summary, details, metrics, t0,
                       (warning,) if warning else ())


def run_single(context: BenchmarkContext, params: Any,
               extra: Any = None) -> Measurement:
    """A benchmark that is one load at `params.concurrency` (throughput, latency,
    streaming_latency). `extra(outcome)` adds (metrics, details) of its own."""
    total = params.requests + params.warmup_requests
    context.progress(0, total)  # run_load has no per-request callback: start and end only
    prepared = prepare(context, params, total)
    outcome = measure(context, params, prepared, load_spec(params, params.concurrency))
    context.progress(total, total)
    metrics, details = list(outcome.metrics), dict(outcome.details)
    if extra is not None:
        more_metrics, more_details = extra(outcome)
        metrics.extend(more_metrics)
        details.update(more_details)
    check = check_error_rate(outcome.summary, params.max_error_rate)
    details["checks"] = [attrs.asdict(check)]
    return Measurement(metrics=tuple(metrics), passed=check.passed,
                       requests=tuple(common.request_samples(outcome.records,
                                                             outcome.window_start_ns)),
                       details=common.jsonable(details), warnings=outcome.warnings)
