"""Latency and throughput metrics from raw request records.

Every definition here is written out, with formulas, in docs/metrics.md; the two must
agree. Inputs are `RequestRecord`s (nanosecond timestamps); outputs are milliseconds,
seconds and per-second rates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np

from kitt_bench_perf.records import Outcome, RequestRecord

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


@attrs.frozen
class Distribution:
    """Summary statistics of one sample. `std` is the population standard deviation
    (ddof=0); percentiles interpolate linearly between order statistics (numpy's default
    "linear" method)."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    p50: float
    p90: float
    p95: float
    p99: float
    p99_9: float

    @classmethod
    def of(cls, values: Iterable[float] | np.ndarray) -> Distribution | None:
        a = np.asarray(values if isinstance(values, np.ndarray) else list(values),
                       dtype=np.float64)
        if a.size == 0:
            return None
        p = np.percentile(a, PERCENTILES, method="linear")
        return cls(count=int(a.size), mean=float(a.mean()), std=float(a.std()),
                   min=float(a.min()), max=float(a.max()), p50=float(p[0]), p90=float(p[1]),
                   p95=float(p[2]), p99=float(p[3]), p99_9=float(p[4]))


@attrs.frozen
class SLO:
    """Per-request service level objectives for goodput; None means no objective."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    itl_ms: float | None = None
    """Applies to the request's `itl_request_mean`."""
    e2e_ms: float | None = None


@attrs.frozen
class RequestMetrics:
    """Per-request values derived from one successful record (ms; None where undefined)."""

    ttft_ms: float | None
    e2e_ms: float
    tpot_ms: float | None
    itl_request_mean_ms: float | None
    output_tokens_per_s: float | None
    ttft_from_scheduled_ms: float | None
    e2e_from_scheduled_ms: float | None

    def meets(self, slo: SLO) -> bool:
        """True when every objective holds. A request with no generated text fails a TTFT
        objective; TPOT and ITL objectives hold vacuously for outputs of < 2 tokens."""
        if slo.ttft_ms is not None and (self.ttft_ms is None or self.ttft_ms > slo.ttft_ms):
            return False
        if slo.tpot_ms is not None and self.tpot_ms is not None and self.tpot_ms > slo.tpot_ms:
            return False
        if (slo.itl_ms is not None and self.itl_request_mean_ms is not None
                and self.itl_request_mean_ms > slo.itl_ms):
            return False
        return slo.e2e_ms is None or self.e2e_ms <= slo.e2e_ms


def request_metrics(r: RequestRecord) -> RequestMetrics:
    sent = r.sent_ns
    e2e_ns = r.end_ns - sent
    n = r.output_tokens
    ttft_ns = r.chunk_ns[0] - sent if r.chunk_ns else None
    tpot = itl_mean = None
    if ttft_ns is not None and n is not None and n >= 2:
        tpot = (e2e_ns - ttft_ns) / (n - 1) / NS_PER_MS
        itl_mean = (r.chunk_ns[-1] - r.chunk_ns[0]) / (n - 1) / NS_PER_MS
    sched = r.scheduled_ns
    return RequestMetrics(
        ttft_ms=None if ttft_ns is None else ttft_ns / NS_PER_MS,
        e2e_ms=e2e_ns / NS_PER_MS,
        tpot_ms=tpot,
        itl_request_mean_ms=itl_mean,
        output_tokens_per_s=(n * NS_PER_S / e2e_ns) if n is not None and e2e_ns > 0 else None,
        ttft_from_scheduled_ms=(None if sched is None or not r.chunk_ns
                                else (r.chunk_ns[0] - sched) / NS_PER_MS),
        e2e_from_scheduled_ms=None if sched is None else (r.end_ns - sched) / NS_PER_MS,
    )


def server_timing_values(records: Iterable[RequestRecord]
                         ) -> dict[str, list[float]]:
    """Per-request values of the server's own timings, over the records that carry them:
    `eval_tokens_per_s` (eval_count / eval_duration, when both are present and the
    duration > 0), `prompt_eval_ms`, `load_ms`, `total_ms` (durations / 1e6). A value the
    server did not send is left out (not counted as zero)."""
    out: dict[str, list[float]] = {"eval_tokens_per_s": [], "prompt_eval_ms": [],
                                   "load_ms": [], "total_ms": []}
    for r in records:
        t = r.server_timings
        if not t:
            continue
        count, duration = t.get("eval_count"), t.get("eval_duration")
        if count is not None and duration:
            out["eval_tokens_per_s"].append(count * NS_PER_S / duration)
        for key, name in (("prompt_eval_duration", "prompt_eval_ms"),
                          ("load_duration", "load_ms"), ("total_duration", "total_ms")):
            value = t.get(key)
            if value is not None:
                out[name].append(value / NS_PER_MS)
    return out


def itl_pooled_ms(records: Iterable[RequestRecord]) -> np.ndarray:
    """Every gap between consecutive text chunks of each request; a chunk of k tokens after
    a gap g contributes k gaps of g/k (a chunk reporting 0 tokens contributes none). The
    first chunk of a request follows no gap and contributes nothing."""
    ts: list[int] = []
    tokens: list[int] = []
    owner: list[int] = []
    for i, r in enumerate(records):
        m = len(r.chunk_ns)
        if m < 2:
            continue
        ts.extend(r.chunk_ns)
        tokens.extend(r.chunk_tokens if r.chunk_tokens is not None else (1,) * m)
        owner.extend((i,) * m)
    if not ts:
        return np.empty(0)
    t = np.asarray(ts, dtype=np.int64)
    k = np.asarray(tokens, dtype=np.int64)[1:]
    same = np.asarray(owner)[1:] == np.asarray(owner)[:-1]
    gaps = np.diff(t)[same]
    k = k[same]
    keep = k > 0
    gaps, k = gaps[keep], k[keep]
    return np.repeat(gaps / k, k) / NS_PER_MS


@attrs.frozen
class Check:
    name: str
    passed: bool
    value: float | None
    threshold: float
    detail: str = ""


@attrs.frozen
class Summary:
    requests: int
    """Measured (non-warmup) requests of every outcome."""
    successful: int
    errored: int
    incomplete: int
    error_rate: float
    """(errored + incomplete) / requests; 0 when there were no requests."""
    window_start_ns: int | None
    window_end_ns: int | None
    window_s: float
    requests_per_s: float | None
    output_tokens_per_s: float | None
    input_tokens_per_s: float | None
    goodput_requests_per_s: float | None
    slo: SLO | None
    slo_met: int | None
    ttft_ms: Distribution | None
    itl_pooled_ms: Distribution | None
    itl_request_mean_ms: Distribution | None
    tpot_ms: Distribution | None
    e2e_ms: Distribution | None
    output_tokens_per_s_per_request: Distribution | None
    output_tokens: Distribution | None
    input_tokens: Distribution | None
    ttft_from_scheduled_ms: Distribution | None
    e2e_from_scheduled_ms: Distribution | None
    send_delay_ms: Distribution | None
    """Actual minus scheduled send time (rate-based loads)."""
    connect_ms: Distribution | None
    """Waiting for a pooled connection and opening one, per request (before TTFT and
    E2E start)."""
    errors: dict[str, int]
    """Errored requests by message (`HTTP 500: ...`), most frequent first (at most 20
    messages, the rest under "(other messages)")."""
    incomplete_reasons: dict[str, int]
    output_token_sources: dict[str, int]
    # The server's own clock (Ollama's final-object timings); None when no successful
    # record carries them (every other engine).
    server_eval_tokens_per_s: Distribution | None = None
    """`eval_count / eval_duration` per request (tokens/s)."""
    server_prompt_eval_ms: Distribution | None = None
    """`prompt_eval_duration` per request (ms)."""
    server_load_ms: Distribution | None = None
    """`load_duration` per request (ms)."""
    server_total_ms: Distribution | None = None
    """`total_duration` per request (ms)."""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, value_serializer=_jsonable)


def _jsonable(inst: Any, field: Any, value: Any) -> Any:
    if isinstance(value, Outcome):
        return value.value
    return value


def measurement_window(records: Sequence[RequestRecord]) -> tuple[int, int] | None:
    """(start, end) in ns: the earliest start of a measured (non-warmup) request to the
    latest end of one, whatever their outcomes. None without measured requests."""
    measured = [r for r in records if not r.warmup]
    if not measured:
        return None
    return min(r.start_ns for r in measured), max(r.end_ns for r in measured)


def summarize(records: Iterable[RequestRecord], slo: SLO | None = None) -> Summary:
    """Metrics of the measured requests in `records` (warmup records are skipped)."""
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.outcome is Outcome.OK]
    errored = [r for r in measured if r.outcome is Outcome.ERROR]
    incomplete = [r for r in measured if r.outcome is Outcome.INCOMPLETE]
    window = measurement_window(measured)
    window_s = (window[1] - window[0]) / NS_PER_S if window else 0.0

    def rate(total: float) -> float | None:
        return total / window_s if window_s > 0 else None

    per = [request_metrics(r) for r in ok]
    out_tokens = [r.output_tokens for r in ok if r.output_tokens is not None]
    in_tokens = [r.input_tokens for r in ok if r.input_tokens is not None]
    slo_met = sum(1 for m in per if m.meets(slo)) if slo is not None else None
    server = server_timing_values(ok)

    def dist(values: Iterable[float | None]) -> Distribution | None:
        return Distribution.of([v for v in values if v is not None])

    return Summary(
        requests=len(measured),
        successful=len(ok),
        errored=len(errored),
        incomplete=len(incomplete),
        error_rate=(len(errored) + len(incomplete)) / len(measured) if measured else 0.0,
        window_start_ns=window[0] if window else None,
        window_end_ns=window[1] if window else None,
        window_s=window_s,
        requests_per_s=rate(len(ok)),
        output_tokens_per_s=rate(sum(out_tokens)),
        input_tokens_per_s=rate(sum(in_tokens)) if in_tokens else None,
        goodput_requests_per_s=rate(slo_met) if slo_met is not None else None,
        slo=slo,
        slo_met=slo_met,
        ttft_ms=dist(m.ttft_ms for m in per),
        itl_pooled_ms=Distribution.of(itl_pooled_ms(ok)),
        itl_request_mean_ms=dist(m.itl_request_mean_ms for m in per),
        tpot_ms=dist(m.tpot_ms for m in per),
        e2e_ms=dist(m.e2e_ms for m in per),
        output_tokens_per_s_per_request=dist(m.output_tokens_per_s for m in per),
        output_tokens=Distribution.of(out_tokens),
        input_tokens=Distribution.of(in_tokens),
        ttft_from_scheduled_ms=dist(m.ttft_from_scheduled_ms for m in per),
        e2e_from_scheduled_ms=dist(m.e2e_from_scheduled_ms for m in per),
        send_delay_ms=dist(None if r.scheduled_ns is None
                           else (r.start_ns - r.scheduled_ns) / NS_PER_MS for r in ok),
        connect_ms=dist(None if r.connect_ns is None else r.connect_ns / NS_PER_MS
                        for r in ok),
        errors=_grouped(r.error or "unknown error" for r in errored),
        incomplete_reasons=_grouped(r.error or "unknown" for r in incomplete),
        output_token_sources=dict(Counter(
            r.output_tokens_source.value if r.output_tokens_source else "unknown"
            for r in ok).most_common()),
        server_eval_tokens_per_s=Distribution.of(server["eval_tokens_per_s"]),
        server_prompt_eval_ms=Distribution.of(server["prompt_eval_ms"]),
        server_load_ms=Distribution.of(server["load_ms"]),
        server_total_ms=Distribution.of(server["total_ms"]),
    )


MAX_GROUPS = 20


def _grouped(messages: Iterable[str]) -> dict[str, int]:
    """Message -> count, most frequent first; beyond MAX_GROUPS distinct messages the rest
    are counted under "(other messages)"."""
    counts = Counter(messages).most_common()
    out = dict(counts[:MAX_GROUPS])
    if len(counts) > MAX_GROUPS:
        out["(other messages)"] = sum(n for _, n in counts[MAX_GROUPS:])
    return out


def check_error_rate(summary: Summary, max_error_rate: float) -> Check:
    """Pass when error_rate <= max_error_rate; a run with no measured requests fails."""
    if summary.requests == 0:
        return Check("max_error_rate", False, None, max_error_rate, "no measured requests")
    return Check("max_error_rate", summary.error_rate <= max_error_rate, summary.error_rate,
                 max_error_rate,
                 f"{summary.errored} errored + {summary.incomplete} incomplete "
                 f"of {summary.requests}")
