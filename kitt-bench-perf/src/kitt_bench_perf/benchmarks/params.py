"""Suite parameters shared by the perf benchmarks (attrs classes with validators).

Light on purpose: suites are validated (and `kitt --help` runs) without aiohttp or numpy.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import validators as v

ENDPOINTS = ("completions", "chat", "generate_stream")
"""`generate_stream` (TGI's native API) is valid only for targets whose api is tgi."""


def _optional(validator: Any) -> Any:
    return v.optional(validator)


_positive_float = v.gt(0)


def _fraction(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value}")


@attrs.frozen(kw_only=True)
class LoadParams:
    """What every load-generating perf benchmark accepts."""

    requests: int = attrs.field(default=16, validator=v.ge(1))
    """Measured requests (warmup requests come on top)."""
    warmup_requests: int = attrs.field(default=0, validator=v.ge(0))
    """Requests sent first and left out of every metric."""
    duration_s: float | None = attrs.field(default=None, validator=_optional(_positive_float))
    """Also stop starting requests after this many seconds."""
    prompt_tokens: int = attrs.field(default=128, validator=v.ge(1))
    """Synthetic prompt length, exact per the engine's tokenizer when it has one."""
    max_tokens: int = attrs.field(default=64, validator=v.ge(1))
    """Output tokens requested (`max_tokens`; with ignore_eos every request runs to it)."""
    endpoint: str = attrs.field(default="completions", validator=v.in_(ENDPOINTS))
    """OpenAI-style engines: `completions` or `chat`. TGI uses chat (Messages API) unless
    `generate_stream` (its native API; refused for other engines)."""
    ignore_eos: bool = True
    temperature: float | None = attrs.field(default=None, validator=_optional(v.ge(0)))
    timeout_s: float = attrs.field(default=300.0, validator=_positive_float)
    """Per request."""
    workers: int = attrs.field(default=1, validator=v.ge(1))
    """Client processes (for loads one event loop cannot drive)."""
    max_error_rate: float = attrs.field(default=0.0, validator=_fraction)
    """The benchmark fails when (errored + incomplete) / requests exceeds this."""
    slo_ttft_ms: float | None = attrs.field(default=None, validator=_optional(_positive_float))
    slo_tpot_ms: float | None = attrs.field(default=None, validator=_optional(_positive_float))
    slo_itl_ms: float | None = attrs.field(default=None, validator=_optional(_positive_float))
    slo_e2e_ms: float | None = attrs.field(default=None, validator=_optional(_positive_float))
    scrape_interval_s: float = attrs.field(default=1.0, validator=v.ge(0))
    """Prometheus /metrics scrape interval while measuring; 0 turns scraping off."""
    prewarm_connections: bool = True
    """Open the client's connections before the measurement starts; false measures cold
    connects (`connect_ms`). TTFT and E2E leave connecting out either way."""
    client_lag_bound_ms: float = attrs.field(default=2.0, validator=_positive_float)
    """The result is marked client-limited when KITT's own event-loop lag (and, in rate
    loads, its send delay) exceeds this at p99: a reported percentile may be off by
    more (docs/metrics.md)."""


@attrs.frozen(kw_only=True)
class ThroughputParams(LoadParams):
    concurrency: int = attrs.field(default=4, validator=v.ge(1))
    requests: int = attrs.field(default=32, validator=v.ge(1))
    max_tokens: int = attrs.field(default=128, validator=v.ge(1))


@attrs.frozen(kw_only=True)
class LatencyParams(LoadParams):
    concurrency: int = attrs.field(default=1, validator=v.ge(1))


@attrs.frozen(kw_only=True)
class StreamingParams(LoadParams):
    concurrency: int = attrs.field(default=1, validator=v.ge(1))
    max_tokens: int = attrs.field(default=128, validator=v.ge(2))


def _levels(instance: Any, attribute: attrs.Attribute, value: list[int]) -> None:
    if not value or any(level < 1 for level in value) or len(set(value)) != len(value):
        raise ValueError(f"{attribute.name} must be distinct whole numbers >= 1, got {value}")


@attrs.frozen(kw_only=True)
class SweepParams(LoadParams):
    levels: list[int] = attrs.field(factory=lambda: [1, 2, 4, 8], validator=_levels)
    """Concurrency levels, run in the order given."""
    requests: int = attrs.field(default=16, validator=v.ge(1))
    """Measured requests per level."""
    slo_attainment: float = attrs.field(default=0.9, validator=_fraction)
    """A level meets the SLO when at least this fraction of its requests meet every slo_*
    limit (and its error rate is within max_error_rate)."""


@attrs.frozen(kw_only=True)
class MemoryParams(LoadParams):
    concurrency: int = attrs.field(default=4, validator=v.ge(1))
    sample_interval_s: float = attrs.field(default=0.25, validator=_positive_float)
    idle_s: float = attrs.field(default=1.0, validator=v.ge(0))
    """Sampling before the load starts: the idle footprint."""


@attrs.frozen(kw_only=True)
class WarmupAnalysisParams(LoadParams):
    requests: int = attrs.field(default=30, validator=v.ge(2))
    window: int = attrs.field(default=5, validator=v.ge(1))
    tolerance: float = attrs.field(default=0.2, validator=_positive_float)
    """Rolling medians within tolerance * steady-state median count as stable."""
    latency: str = attrs.field(default="e2e", validator=v.in_(("e2e", "ttft")))

    def __attrs_post_init__(self) -> None:
        if self.window > self.requests // 2:
            raise ValueError(f"window ({self.window}) must be at most requests/2 "
                             f"({self.requests // 2})")


def _lengths(instance: Any, attribute: attrs.Attribute, value: list[int]) -> None:
    if not value or any(length < 16 for length in value):
        raise ValueError(f"{attribute.name} must be a non-empty list of lengths >= 16")


def _positions(instance: Any, attribute: attrs.Attribute, value: list[float]) -> None:
    if not value or any(not 0.0 <= p <= 1.0 for p in value):
        raise ValueError(f"{attribute.name} must be a non-empty list of fractions in [0, 1]")


@attrs.frozen(kw_only=True)
class LongContextParams:
    context_lengths: list[int] = attrs.field(factory=lambda: [1024, 2048, 4096, 8192],
                                             validator=_lengths)
    """Prompt lengths in tokens; those beyond the engine's context are skipped."""
    positions: list[float] = attrs.field(factory=lambda: [0.0, 0.5, 1.0],
                                         validator=_positions)
    """Needle depth: 0 = start of the haystack, 1 = its end."""
    trials: int = attrs.field(default=1, validator=v.ge(1))
    max_tokens: int = attrs.field(default=16, validator=v.ge(1))
    max_context: int | None = attrs.field(default=None, validator=_optional(v.ge(16)))
    """The engine's context in tokens; None asks the engine (/props, /v1/models)."""
    endpoint: str = attrs.field(default="completions", validator=v.in_(ENDPOINTS))
    timeout_s: float = attrs.field(default=600.0, validator=_positive_float)
    max_error_rate: float = attrs.field(default=0.0, validator=_fraction)
