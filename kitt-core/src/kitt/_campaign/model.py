"""What a campaign file says, once validated, and what planning makes of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from kitt.records import EngineConfig

EVENTS = ("run_finished", "campaign_finished", "failure")


@attrs.frozen
class ModelSpec:
    reference: str
    """A resolved path (absolute) or an Ollama tag."""
    label: str
    engines: tuple[str, ...] | None = None
    """Engine labels this model is limited to (None: every engine of the campaign)."""
    quantization: str | None = None
    """Given in the file; overrides detection."""
    suite: str | None = None


@attrs.frozen
class EngineSpec:
    label: str
    config: EngineConfig
    suite: str | None = None


@attrs.frozen
class Notify:
    webhook: str | None = None
    on: tuple[str, ...] = EVENTS
    timeout_s: float = 10.0


@attrs.frozen
class CampaignSpec:
    name: str
    path: Path
    models: tuple[ModelSpec, ...]
    engines: tuple[EngineSpec, ...]
    output: Path
    description: str = ""
    suite: str = "quick"
    runs: int | None = None
    skip_warmup: bool = False
    seed: int = 0
    store: str | None = None
    quantizations: tuple[str, ...] | None = None
    """filters.quantizations: only models whose quantization is listed (None: all)."""
    min_free_gb: float | None = None
    cleanup_work_dirs: bool = False
    notify: Notify = Notify()


@attrs.frozen
class Entry:
    """One run of the campaign: a model on an engine with a suite."""

    id: str
    model: ModelSpec
    engine: EngineSpec
    suite: str
    format: str | None
    quantization: str | None
    skip_reason: str | None = None
    """Set when planning left this pair out (format, quantization)."""

    @property
    def runnable(self) -> bool:
        return self.skip_reason is None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model.reference, "model_label": self.model.label,
                "engine": self.engine.config.engine, "engine_label": self.engine.label,
                "suite": self.suite, "format": self.format, "quantization": self.quantization}
