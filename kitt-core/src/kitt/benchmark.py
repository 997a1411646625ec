"""The benchmark contract: what a benchmark receives and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs

from kitt.model import JSON, Fingerprint, ItemRecord, Metric, RequestSample


@attrs.frozen
class Target:
    """The engine under test, as a benchmark sees it."""

    base_url: str
    """Scheme, host and port, no trailing slash: `http://127.0.0.1:8081`."""
    model: str
    """The model name to put in API requests."""
    api: str = "openai"
    engine: str = "unknown"
    model_path: Path | None = None
    """The local model (file or folder) when KITT knows it: tokenizers read it."""
    pid: int | None = None
    """Native mode: the server's process id (its process group is the engine)."""
    container_id: str | None = None
    """Docker mode: the engine's container."""
    metrics_path: str | None = "/metrics"


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


@attrs.frozen
class NoParams:
    """For benchmarks that take no parameters."""


class Benchmark:
    """Base class for benchmark plugins."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    category: ClassVar[str] = "performance"
    description: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    """An attrs class; suite parameters are structured into it (unknown keys rejected)."""

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Benchmark {self.name}>"
