"""Every metric the perf benchmarks report: name, unit and direction, declared once.

Benchmarks build their metrics from these specs (`SPEC(value)`), so the direction that
comparisons and regression flags read is set where the number is made, and `kitt test
show BENCHMARK` lists exactly what a run can report. Definitions are in docs/metrics.md.
Light on purpose (kitt only): it is imported when the plugin registers its benchmarks.
"""

from __future__ import annotations

from kitt import MetricSpec

LATENCY_STATS = ("mean", "std", "min", "max", "p50", "p90", "p95", "p99")

# Summary distribution field -> (metric prefix, unit, direction, statistics reported as
# metrics). A spread (std) is bad when it grows, like the latency itself; for a rate that
# is better higher, every statistic is better higher. The full distributions (p99_9
# included) are in details["summary"].
DISTRIBUTIONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "ttft_ms": ("ttft_ms", "ms", "lower", LATENCY_STATS),
    "itl_pooled_ms": ("itl_pooled_ms", "ms", "lower", LATENCY_STATS),
    "itl_request_mean_ms": ("itl_request_mean_ms", "ms", "lower", LATENCY_STATS),
    "tpot_ms": ("tpot_ms", "ms", "lower", LATENCY_STATS),
    "e2e_ms": ("e2e_ms", "ms", "lower", LATENCY_STATS),
    "output_tokens_per_s_per_request": ("request_output_tokens_per_s", "tokens/s", "higher",
                                        ("mean", "p50", "min")),
    "output_tokens": ("output_tokens", "tokens", "neutral", ("mean", "min", "max")),
    "input_tokens": ("input_tokens", "tokens", "neutral", ("mean", "min", "max")),
    "ttft_from_scheduled_ms": ("ttft_from_scheduled_ms", "ms", "lower", LATENCY_STATS),
    "e2e_from_scheduled_ms": ("e2e_from_scheduled_ms", "ms", "lower", LATENCY_STATS),
    # How late KITT's client sent against the schedule: a property of the client, not
    # of the engine, so it is never a regression of the engine.
    "send_delay_ms": ("send_delay_ms", "ms", "neutral", ("mean", "p99", "max")),
    # Waiting for and opening a connection, outside TTFT and E2E: the server's accept
    # queue is in it, so it is a latency like the others.
    "connect_ms": ("connect_ms", "ms", "lower", ("mean", "p99", "max")),
    # The server's own timings (Ollama): present only when the engine reported them.
    "server_eval_tokens_per_s": ("server_eval_tokens_per_s", "tokens/s", "higher",
                                 ("mean", "p50", "min")),
    "server_prompt_eval_ms": ("server_prompt_eval_ms", "ms", "lower",
                              ("mean", "p50", "p99", "max")),
    "server_load_ms": ("server_load_ms", "ms", "lower", ("mean", "max")),
    "server_total_ms": ("server_total_ms", "ms", "lower", ("mean", "p50", "p99", "max")),
}

REQUESTS = MetricSpec("requests", "requests", "neutral", "measured requests")
ERRORED = MetricSpec("errored", "requests", "lower", "requests that errored or stopped early")
ERROR_RATE = MetricSpec("error_rate", "", "lower", "(errored + incomplete) / requests")
WINDOW = MetricSpec("window_s", "s", "neutral", "the measurement window")
REQUESTS_PER_S = MetricSpec("requests_per_s", "requests/s", "higher")
OUTPUT_TOKENS_PER_S = MetricSpec("output_tokens_per_s", "tokens/s", "higher")
INPUT_TOKENS_PER_S = MetricSpec("input_tokens_per_s", "tokens/s", "higher")
GOODPUT = MetricSpec("goodput_requests_per_s", "requests/s", "higher",
                     "requests per second that met every SLO")
SLO_ATTAINMENT = MetricSpec("slo_attainment_pct", "%", "higher",
                            "share of requests that met every SLO")
RATES = {"requests_per_s": REQUESTS_PER_S, "output_tokens_per_s": OUTPUT_TOKENS_PER_S,
         "input_tokens_per_s": INPUT_TOKENS_PER_S, "goodput_requests_per_s": GOODPUT}
"""Summary attribute -> its spec."""

DISTRIBUTION_SPECS: dict[str, tuple[MetricSpec, ...]] = {
    field: tuple(MetricSpec(f"{prefix}_{stat}", unit, direction)  # type: ignore[arg-type]
                 for stat in stats)
    for field, (prefix, unit, direction, stats) in DISTRIBUTIONS.items()
}
"""Summary distribution field -> a spec per reported statistic, in `stats` order."""

SERVER = (
    MetricSpec("server_generation_tokens", "tokens", "neutral",
               "tokens the engine's /metrics counted as generated during the load"),
    MetricSpec("server_prompt_tokens", "tokens", "neutral",
               "prompt tokens the engine's /metrics counted during the load"),
    MetricSpec("server_queue_depth_max", "", "lower", "most requests waiting at once"),
    MetricSpec("server_requests_running_max", "", "neutral", "most requests running at once"),
    MetricSpec("server_kv_cache_usage_max", "", "neutral", "highest KV-cache use reported"),
)
SERVER_BY_NAME = {spec.name: spec for spec in SERVER}

# KITT's own client during the load (details.client_health): properties of the load
# generator, never of the engine, so neutral.
CLIENT = (
    MetricSpec("client_loop_lag_ms_p99", "ms", "neutral",
               "how late the client's event loop got to an event (99th percentile)"),
    MetricSpec("client_cpu_cores_max", "cores", "neutral",
               "CPU use of the busiest client process"),
    MetricSpec("client_limited", "", "neutral",
               "1 when the client's own lag could have moved a reported percentile by "
               "more than client_lag_bound_ms"),
)
CLIENT_BY_NAME = {spec.name: spec for spec in CLIENT}

LOAD = (REQUESTS, ERRORED, ERROR_RATE, WINDOW, *RATES.values(), SLO_ATTAINMENT,
        *(spec for specs in DISTRIBUTION_SPECS.values() for spec in specs), *SERVER,
        *CLIENT)
"""What every load (throughput, latency, streaming_latency) reports."""

JITTER = tuple(MetricSpec(f"{name}_{stat}", "ms", "lower", what)
               for name, what in (("itl_jitter_ms", "standard deviation of a stream's gaps"),
                                  ("itl_max_gap_ms", "a stream's longest gap (a stall)"))
               for stat in ("mean", "p50", "p99", "max"))

SWEEP_LEVEL = ("output_tokens_per_s", "requests_per_s", "ttft_ms_p50", "ttft_ms_p99",
               "e2e_ms_p50", "itl_pooled_ms_p50", "error_rate", "goodput_requests_per_s",
               "slo_attainment_pct")
"""The load metrics each sweep level reports as `concurrency_<level>.<metric>`."""
BEST_CONCURRENCY = MetricSpec("best_concurrency", "requests", "higher",
                              "the level with the highest output tokens/s within the SLO")
BEST_OUTPUT_TOKENS_PER_S = MetricSpec("best_output_tokens_per_s", "tokens/s", "higher")
BEST_REQUESTS_PER_S = MetricSpec("best_requests_per_s", "requests/s", "higher")
_LOAD_BY_NAME = {spec.name: spec for spec in LOAD}
SWEEP = (BEST_CONCURRENCY, BEST_OUTPUT_TOKENS_PER_S, BEST_REQUESTS_PER_S,
         *(MetricSpec(f"concurrency_{{level}}.{name}", _LOAD_BY_NAME[name].unit,
                      _LOAD_BY_NAME[name].direction) for name in SWEEP_LEVEL))

MEMORY_SERIES = ("memory", "rss", "container_memory", "gpu{index}_memory")
"""`memory` repeats the primary source: the GPUs' total, else the container, else the
process tree."""
MEMORY = tuple(MetricSpec(f"{series}_{stat}_mib", "MiB", "lower")
               for series in MEMORY_SERIES for stat in ("peak", "mean", "idle"))
MEMORY_LOAD = ("requests", "error_rate", "output_tokens_per_s", "requests_per_s",
               "e2e_ms_p50")
"""The load metrics memory_usage repeats."""

FIRST_LATENCY = MetricSpec("first_latency_ms", "ms", "lower", "the first request's latency")
STEADY_LATENCY = MetricSpec("steady_latency_ms", "ms", "lower",
                            "median latency of the second half of the requests")
COLD_START_RATIO = MetricSpec("cold_start_ratio", "", "lower",
                              "first latency / steady latency")
STABILIZATION_INDEX = MetricSpec("stabilization_index", "requests", "lower",
                                 "the request from which latency stays in the band")
WARMUP_LATENCY = MetricSpec("warmup_latency_ms_mean", "ms", "lower",
                            "mean latency of the requests before stabilization")
WARMUP_LOAD = ("ttft_ms_p50", "e2e_ms_p50", "error_rate")
"""The load metrics warmup_analysis repeats."""
WARMUP = (FIRST_LATENCY, STEADY_LATENCY, COLD_START_RATIO, STABILIZATION_INDEX,
          WARMUP_LATENCY, *(_LOAD_BY_NAME[name] for name in WARMUP_LOAD))

ACCURACY = MetricSpec("accuracy_pct", "%", "higher", "needles retrieved, all lengths")
LENGTH_ACCURACY = MetricSpec("ctx_{length}_accuracy_pct", "%", "higher")
LENGTH_TTFT = MetricSpec("ctx_{length}_ttft_ms", "ms", "lower")
LENGTH_E2E = MetricSpec("ctx_{length}_e2e_ms", "ms", "lower")
TTFT_MAX_LENGTH = MetricSpec("ttft_ms_max_length", "ms", "lower",
                             "mean TTFT at the longest context")
LONG_CONTEXT = (ACCURACY, LENGTH_ACCURACY, LENGTH_TTFT, LENGTH_E2E, TTFT_MAX_LENGTH)


def load_spec(name: str) -> MetricSpec:
    """The spec of a load metric by name."""
    return _LOAD_BY_NAME[name]
