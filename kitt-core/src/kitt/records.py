"""What KITT records: frozen, typed value classes.

Every class here round-trips losslessly through `kitt._util.converter` (JSON). Fields that
hold free-form JSON (`config`, `params`, `details`) must contain only JSON values:
str, int, float (finite), bool, None, lists and string-keyed dicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import attrs

JSON = Any
"""A JSON value (documented alias: mappings with str keys, lists, scalars)."""

RunStatus = Literal["running", "passed", "failed", "error", "interrupted"]
"""`interrupted`: a signal (SIGINT, SIGTERM) stopped the run before every benchmark
finished; what was measured is kept."""
Mode = Literal["native", "docker", "external"]
Direction = Literal["higher", "lower", "neutral"]
"""Which way a metric should move: `higher` or `lower` is better, or `neutral` (a count,
a setting or a standard error: never a regression)."""
DIRECTIONS: tuple[Direction, ...] = ("higher", "lower", "neutral")


@attrs.frozen
class Metric:
    """One named measurement. `unit` uses short SI-like names: ms, s, tokens/s, MiB, %.

    `direction` is set by the benchmark that produced the value (usually through its
    `kitt.MetricSpec`); comparisons and regression flags read it. None means not stated:
    runs stored before KITT recorded directions, or a plugin that declares none. Such a
    metric takes the direction its benchmark declares, else it is neutral.
    """

    name: str
    value: float
    unit: str = ""
    direction: Direction | None = None


@attrs.frozen
class GPU:
    name: str
    memory_mib: int | None = None
    compute_capability: str | None = None
    uuid: str | None = None


@attrs.frozen
class GPUSection:
    """No GPU is a valid result: `gpus` empty and `source` says how that was decided."""

    gpus: tuple[GPU, ...] = ()
    driver_version: str | None = None
    cuda_version: str | None = None
    unified_memory: bool = False
    source: str = "unknown"


@attrs.frozen
class CPUSection:
    brand: str | None = None
    architecture: str | None = None
    cores: int | None = None
    threads: int | None = None


@attrs.frozen
class MemorySection:
    total_mib: int | None = None
    type: str | None = None


@attrs.frozen
class StorageSection:
    kind: str | None = None
    """nvme, ssd, hdd or None when unknown."""
    model: str | None = None
    device: str | None = None


@attrs.frozen
class OSSection:
    system: str | None = None
    distribution: str | None = None
    version: str | None = None
    kernel: str | None = None


@attrs.frozen
class Fingerprint:
    """A description of the machine a run measured.

    `fingerprint` is the stable string documented in docs/fingerprint.md; `extra` holds
    what third-party probes reported, keyed by probe name; `warnings` lists probes that
    failed (their section is then all-unknown).
    """

    fingerprint: str
    gpu: GPUSection = GPUSection()
    cpu: CPUSection = CPUSection()
    memory: MemorySection = MemorySection()
    storage: StorageSection = StorageSection()
    os: OSSection = OSSection()
    environment: str = "unknown"
    extra: dict[str, dict[str, JSON]] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()


@attrs.frozen
class EngineConfig:
    """How an engine was (or is to be) launched."""

    engine: str
    mode: Mode = "native"
    image: str | None = None
    port: int | None = None
    options: dict[str, JSON] = attrs.field(factory=dict)
    extra_args: tuple[str, ...] = ()


@attrs.frozen
class RequestSample:
    """One request of a performance benchmark, compactly (times in ms from window start)."""

    start_ms: float
    ok: bool
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    itl_mean_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None


@attrs.frozen
class ItemRecord:
    """One scored item of a quality benchmark."""

    item_id: str
    correct: bool
    target: str = ""
    prompt: str = ""
    output: str = ""
    subject: str | None = None
    scores: dict[str, float] = attrs.field(factory=dict)


@attrs.frozen
class BenchmarkResult:
    """The outcome of one benchmark in one repetition (`run_number` counts from 1)."""

    name: str
    version: str
    run_number: int
    passed: bool
    metrics: tuple[Metric, ...] = ()
    params: dict[str, JSON] = attrs.field(factory=dict)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    requests: tuple[RequestSample, ...] = ()
    items: tuple[ItemRecord, ...] = ()
    details: dict[str, JSON] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()
    """The benchmark's `Measurement.warnings`: caveats on these numbers, with their fix."""

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)


@attrs.frozen
class Run:
    """A whole `kitt run`: one engine on one model through one suite."""

    id: str
    model: str
    engine: EngineConfig
    suite: str
    status: RunStatus
    started_at: datetime
    kitt_version: str
    hardware: Fingerprint
    finished_at: datetime | None = None
    engine_version: str | None = None
    engine_version_source: str | None = None
    """Where `engine_version` was read: the server's API, its `--version`, a package, or
    the binary's hash (`kitt.EngineVersion`)."""
    config: dict[str, JSON] = attrs.field(factory=dict)
    results: tuple[BenchmarkResult, ...] = ()
    error: str | None = None
