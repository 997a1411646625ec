"""streaming_latency's own numbers: the steadiness of each stream (jitter, stalls)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kitt import Metric
from kitt_bench_perf.benchmarks import catalog
from kitt_bench_perf.benchmarks.loadrun import LoadOutcome
from kitt_bench_perf.metrics import NS_PER_MS, Distribution
from kitt_bench_perf.records import RequestRecord


def request_gaps_ms(record: RequestRecord) -> np.ndarray:
    """Per-token gaps of one stream (ms), as the pooled ITL defines them: a chunk of k
    tokens after a gap g gives k gaps of g/k."""
    if len(record.chunk_ns) < 2:
        return np.empty(0)
    gaps = np.diff(np.asarray(record.chunk_ns, dtype=np.int64))
    k = np.asarray(record.chunk_tokens[1:] if record.chunk_tokens is not None
                   else [1] * len(gaps), dtype=np.int64)
    keep = k > 0
    return np.repeat(gaps[keep] / k[keep], k[keep]) / NS_PER_MS


def jitter(outcome: LoadOutcome) -> tuple[list[Metric], dict[str, Any]]:
    """Jitter of a stream = the population standard deviation of its per-token gaps;
    `itl_jitter_ms_*` summarise it over streams. `itl_max_gap_ms_*` is each stream's
    longest gap (a stall)."""
    ok = [r for r in outcome.records if r.ok and not r.warmup]
    per_request = [g for g in (request_gaps_ms(r) for r in ok) if g.size >= 2]
    jitters = Distribution.of([float(g.std()) for g in per_request])
    stalls = Distribution.of([float(g.max()) for g in per_request])
    metrics: list[Metric] = []
    details: dict[str, Any] = {}
    for name, dist in (("itl_jitter_ms", jitters), ("itl_max_gap_ms", stalls)):
        if dist is None:
            continue
        metrics.extend(spec(getattr(dist, spec.name.rpartition("_")[2]))
                       for spec in catalog.JITTER if spec.name.startswith(f"{name}_"))
        details[name] = {k: getattr(dist, k) for k in
                         ("count", "mean", "std", "min", "max", "p50", "p90", "p99")}
    return metrics, {"stream_steadiness": details}
