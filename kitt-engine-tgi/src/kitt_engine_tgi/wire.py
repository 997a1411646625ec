"""TGI's native streaming format: `POST /generate_stream` answers server-sent events.

Each event is one `data:` line holding a JSON object: a `token` (`id`, `text`, `logprob`,
`special`) per generated token; the last event also carries `generated_text` and
`details` (`finish_reason`, `generated_tokens`, `seed`, `input_length`). Errors come as an
event with `error` (and `error_type`). Stdlib only: importable anywhere, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs


@attrs.frozen
class Token:
    id: int
    text: str
    logprob: float | None = None
    special: bool = False


@attrs.frozen
class StreamEvent:
    token: Token | None = None
    generated_text: str | None = None
    """Set on the last event only."""
    details: dict[str, Any] | None = None
    """The last event's `details` (finish_reason, generated_tokens, seed, input_length)."""
    error: str | None = None

    @property
    def final(self) -> bool:
        return self.generated_text is not None or self.details is not None


def generate_request(prompt: str, max_new_tokens: int, *, temperature: float | None = None,
                     stream: bool = True, **parameters: Any) -> dict[str, Any]:
    """The body for `/generate` or `/generate_stream`. TGI samples greedily unless
    `do_sample`; `details` asks for token details (the final event's `details`)."""
    params: dict[str, Any] = {"max_new_tokens": max_new_tokens, "details": True}
    if temperature:  # TGI rejects temperature 0: greedy is the default
        params.update(do_sample=True, temperature=temperature)
    params.update(parameters)
    return {"inputs": prompt, "parameters": params, "stream": stream}


def parse_event(line: bytes | str) -> StreamEvent | None:
    """One SSE line; None for lines that carry no event (blank, comments, `event:`)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8")
    line = line.strip()
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload:
        return None
    try:
        obj = json.loads(payload)
    except ValueError:
        return StreamEvent(error=f"malformed event: {payload[:200]}")
    if not isinstance(obj, dict):
        return StreamEvent(error=f"unexpected event: {payload[:200]}")
    if obj.get("error") is not None:
        return StreamEvent(error=str(obj["error"]))
    raw = obj.get("token")
    token = None
    if isinstance(raw, dict):
        token = Token(id=int(raw["id"]), text=str(raw.get("text", "")),
                      logprob=raw.get("logprob"), special=bool(raw.get("special", False)))
    return StreamEvent(token=token, generated_text=obj.get("generated_text"),
                       details=obj.get("details"))


@attrs.frozen
class StreamResult:
    tokens: tuple[Token, ...]
    generated_text: str | None
    details: dict[str, Any] | None
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.generated_text is not None

    @property
    def output_tokens(self) -> int:
        """Generated tokens: the server's count when it gave details, else the events."""
        if self.details and isinstance(self.details.get("generated_tokens"), int):
            return self.details["generated_tokens"]
        return len(self.tokens)


def read_stream(lines: Iterable[bytes | str]) -> StreamResult:
    """A whole `/generate_stream` response, line by line."""
    tokens: list[Token] = []
    text = details = error = None
    for line in lines:
        event = parse_event(line)
        if event is None:
            continue
        if event.error is not None:
            error = event.error
            break
        if event.token is not None:
            tokens.append(event.token)
        if event.final:
            text, details = event.generated_text, event.details
    return StreamResult(tuple(tokens), text, details, error)
