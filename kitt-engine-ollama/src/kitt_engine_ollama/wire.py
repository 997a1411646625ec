"""Ollama's own timings, from the last object of an `/api/generate` or `/api/chat`
stream (the one with `"done": true`).

Ollama reports durations in nanoseconds, measured inside the server: model loading,
prompt evaluation and generation. Recorded next to the client's timings they separate
server time from network and queueing time. Stdlib only; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

_NS_PER_MS = 1e6


@attrs.frozen
class ServerTimings:
    """Ollama's timings of one request, in milliseconds (counts in tokens)."""

    total_ms: float | None = None
    load_ms: float | None = None
    prompt_eval_count: int | None = None
    prompt_eval_ms: float | None = None
    eval_count: int | None = None
    eval_ms: float | None = None
    done_reason: str | None = None

    @property
    def prompt_tokens_per_s(self) -> float | None:
        return _rate(self.prompt_eval_count, self.prompt_eval_ms)

    @property
    def eval_tokens_per_s(self) -> float | None:
        """Generation speed as Ollama measured it (`eval_count / eval_duration`)."""
        return _rate(self.eval_count, self.eval_ms)

    def as_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "prompt_tokens_per_s": self.prompt_tokens_per_s,
                "eval_tokens_per_s": self.eval_tokens_per_s}


def _rate(count: int | None, ms: float | None) -> float | None:
    if not count or not ms:
        return None
    return count / (ms / 1000.0)


def _ms(value: Any) -> float | None:
    return value / _NS_PER_MS if isinstance(value, int | float) else None


def server_timings(final: dict[str, Any]) -> ServerTimings:
    """Timings from the final (`done: true`) object; absent fields stay None (Ollama
    omits `prompt_eval_count` when the prompt was cached, for one)."""
    return ServerTimings(
        total_ms=_ms(final.get("total_duration")), load_ms=_ms(final.get("load_duration")),
        prompt_eval_count=final.get("prompt_eval_count"),
        prompt_eval_ms=_ms(final.get("prompt_eval_duration")),
        eval_count=final.get("eval_count"), eval_ms=_ms(final.get("eval_duration")),
        done_reason=final.get("done_reason"),
    )


def final_object(lines: Iterable[bytes | str]) -> dict[str, Any] | None:
    """The `done: true` object of an NDJSON stream (None when the stream ended early)."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        obj = json.loads(line)
        if isinstance(obj, dict) and obj.get("done"):
            return obj
    return None
