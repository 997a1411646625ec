"""Benchmark parameters (suite YAML keys). Recorded with every result."""

from __future__ import annotations

from typing import Literal

import attrs

ScoringMode = Literal["auto", "loglikelihood", "generative"]


def _positive_or_none(instance, attribute, value):
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1 (or omitted), got {value}")


def _non_negative_or_none(instance, attribute, value):
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more (or omitted), got {value}")


@attrs.frozen
class QualityParams:
    """Settings shared by every quality benchmark."""

    limit: int | None = attrs.field(default=None, validator=_positive_or_none)
    """Sample size: evaluate this many items, drawn at random with `seed` (None: all)."""
    seed: int = 1234
    """Seeds the item sample. Few-shot examples use lm-eval's own fixed seed (1234)."""
    num_fewshot: int | None = attrs.field(default=None, validator=_non_negative_or_none)
    """Few-shot examples per prompt; None keeps lm-eval's default for the task."""
    concurrency: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    """Requests in flight at once."""
    max_tokens: int | None = attrs.field(default=None, validator=_positive_or_none)
    """Generation cap for generative scoring (None: the task's own, else 256)."""
    chat_template: bool = False
    """Wrap prompts in the model's chat template (from the model folder's tokenizer)."""
    scoring_mode: ScoringMode = "auto"
    """auto: loglikelihood when the engine returns prompt logprobs, else generative."""
    dataset: str | None = None
    """Local data instead of the Hugging Face dataset: a .jsonl/.json/.parquet file (the
    evaluation split) or a folder of `<split>.<ext>` files, in the dataset's own schema."""
    tokenizer: str | None = None
    """Tokenizer for loglikelihood scoring: a folder with tokenizer.json, or `engine` for
    the engine's tokenize endpoint. None: the model folder's, else the engine's."""
    resume: bool = True
    """Reuse finished requests from a checkpoint in the output folder."""
    timeout_s: int = attrs.field(default=300, validator=attrs.validators.ge(1))
    """Per-request timeout."""


@attrs.frozen
class MMLUParams(QualityParams):
    subjects: tuple[str, ...] | None = None
    """Only these subjects (e.g. [abstract_algebra, anatomy]); None: all."""
