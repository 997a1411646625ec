"""The benchmark contract: what a benchmark receives, what it declares and what it returns."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs

from kitt.engine import TokenizeApi
from kitt.records import (
    DIRECTIONS,
    JSON,
    Direction,
    Fingerprint,
    ItemRecord,
    Metric,
    RequestSample,
)


@attrs.frozen
class Target:
    """The engine under test, as a benchmark sees it."""

    base_url: str
    """Scheme, host and port, no trailing slash: `http://127.0.0.1:8081`."""
    model: str
    """The model name to put in API requests."""
    api: str = "openai"
    """The API flavour: `openai`, `tgi` or `ollama` (`Engine.api`)."""
    engine: str = "unknown"
    model_path: Path | None = None
    """The local model (file or folder) when KITT knows it: tokenizers read it."""
    pid: int | None = None
    """Native mode: the server's process id (its process group is the engine)."""
    container_id: str | None = None
    """Docker mode: the engine's container."""
    metrics_path: str | None = "/metrics"
    tokenize: TokenizeApi | None = None
    """The engine's own tokenize endpoint, when it has one (`kitt.EngineTokenizer`)."""


Progress = Callable[[int, int | None], None]
"""`progress(done, total)`: benchmarks call it as work completes (total None if unknown)."""


def _no_progress(done: int, total: int | None) -> None:
    return None


@attrs.frozen
class BenchmarkContext:
    target: Target
    hardware: Fingerprint
    output_dir: Path
    """A folder this benchmark run may write to (checkpoints, raw files)."""
    run_number: int = 1
    seed: int = 0
    progress: Progress = _no_progress


@attrs.frozen
class Measurement:
    """What a benchmark returns. `passed` is False when a threshold the user set was
    crossed; errors are exceptions, not measurements."""

    metrics: tuple[Metric, ...] = ()
    passed: bool = True
    requests: tuple[RequestSample, ...] = ()
    items: tuple[ItemRecord, ...] = ()
    details: dict[str, JSON] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()
    """Why some numbers may not mean what they say, each with its fix (e.g. the load
    generator was the bottleneck: "client-limited: ..."). They do not fail the benchmark;
    every summary, report and JSON output shows them beside its results."""


@attrs.frozen
class NoParams:
    """For benchmarks that take no parameters."""


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@attrs.frozen
class MetricSpec:
    """A metric a benchmark can report: its name, unit and direction.

    A name may hold `{placeholders}` for the parts a run decides, e.g.
    `concurrency_{level}.output_tokens_per_s`; a placeholder stands for letters, digits,
    `_` and `-`. Calling the spec makes a `kitt.Metric` carrying its unit and direction:
    `SPEC(12.5)`, `SPEC(12.5, level=8)`.
    """

    name: str
    unit: str = ""
    direction: Direction = attrs.field(default="neutral",
                                       validator=attrs.validators.in_(DIRECTIONS))
    description: str = ""

    def __call__(self, value: float, **fields: Any) -> Metric:
        return Metric(self.name.format(**fields) if fields else self.name, value, self.unit,
                      self.direction)

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = _PLACEHOLDER.split(self.name)
        # split() alternates literal text and placeholder names.
        regex = "".join(re.escape(part) if i % 2 == 0 else r"[\w-]+?"
                        for i, part in enumerate(parts))
        return re.compile(f"^{regex}$")

    def matches(self, name: str) -> bool:
        return bool(self.pattern.match(name))


class Benchmark:
    """Base class for benchmark plugins. Core reads exactly the class attributes below."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    """Bump it when the benchmark's numbers change meaning."""
    category: ClassVar[str] = "performance"
    description: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    """An attrs class; suite parameters are structured into it (unknown keys rejected)."""
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    """Every metric the benchmark can report. Metrics a run returns without a direction
    get the declared one; `kitt test show` lists them."""
    headline: ClassVar[tuple[str, ...]] = ()
    """The metric names `kitt run`'s summary shows (all metrics when empty)."""
    source: Path | None = None
    """Where the benchmark was defined, for benchmarks made from files (custom evals)."""
    problem: str | None = None
    """Why a benchmark made from a file cannot run (shown by `kitt test list`); None when
    it can."""

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        raise NotImplementedError

    def metric_spec(self, name: str) -> MetricSpec | None:
        """The declared spec a metric name matches: an exact name before a pattern."""
        exact = next((spec for spec in self.metrics if spec.name == name), None)
        return exact or next((spec for spec in self.metrics if spec.matches(name)), None)

    def __repr__(self) -> str:
        return f"<Benchmark {self.name}>"
