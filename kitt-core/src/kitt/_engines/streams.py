"""The streaming wire formats of KITT's API flavours, written once: the request body of
each streaming route (`Route`, `request_body`) and an incremental parser for each answer
(OpenAI SSE, Ollama NDJSON and TGI's native `/generate_stream` SSE). The load generator,
warmup and the conformance check all speak through this module.

They take raw body bytes exactly as the network delivered them (any split: mid-line,
mid-UTF-8 character, several events per read) with the arrival time of each read, and keep
only what the metrics need: the arrival time of every chunk that carried generated text,
per-chunk token counts when the server reports them, usage totals, and the end marker.
The parsers do no I/O, so every edge case is testable without a network.

`post_stream` sends one streamed request with the standard library, for the few requests
that are not measured (warmup, conformance); the load generator has its own client.

Lines are split on b"\\n" (a trailing b"\\r" is tolerated). Each SSE `data:` line is one
event: LLM servers never spread one JSON event over several `data:` lines, and dispatching
per line (rather than waiting for the blank line) timestamps an event as soon as it is
complete. Comments (`: ping`), `event:`, `id:` and `retry:` lines are ignored.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any, Literal

# The C scanner behind json.loads, called directly: json.loads(bytes) spends more time
# detecting the encoding and matching whitespace than scanning a small event.
_scan = json.JSONDecoder().scan_once
ERROR_EXCERPT_CHARS = 300
OLLAMA_TIMINGS = ("total_duration", "load_duration", "prompt_eval_count",
                  "prompt_eval_duration", "eval_count", "eval_duration")
"""Ollama's own timings (ns) and counts, kept from the final (`done: true`) object."""


def excerpt(text: str | bytes, limit: int = ERROR_EXCERPT_CHARS) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StreamParser:
    """Shared state and line splitting; subclasses interpret one line at a time."""

    __slots__ = (
        "_carry",
        "_cum_tokens",
        "_pending",
        "_pending_ns",
        "capture_text",
        "chunk_ns",
        "chunk_tokens",
        "done_ns",
        "error",
        "finished",
        "input_tokens",
        "output_tokens",
        "reasoning",
        "server_timings",
        "text",
        "tokens_exact",
    )

    def __init__(self, capture_text: bool = True) -> None:
        self.capture_text = capture_text
        self.chunk_ns: list[int] = []
        self.chunk_tokens: list[int] = []
        # Stays True while every text chunk carried a server token count.
        self.tokens_exact = True
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.done_ns: int | None = None
        self.finished = False  # a finish_reason was seen
        self.error: str | None = None
        self.server_timings: dict[str, int] | None = None
        """The server's own timings of the request (Ollama's final object), if any."""
        self._pending: list[bytes] = []
        self._pending_ns = 0
        self._cum_tokens = 0
        self._carry = 0

    def feed(self, data: bytes, now_ns: int) -> None:
        """Consume one read of body bytes that arrived at `now_ns`."""
        nl = data.find(b"\n")
        if nl < 0:
            # No line completes here; keep the fragment (joined once the line ends, so a
            # very long line costs O(length), not O(length^2)).
            self._pending.append(data)
            self._pending_ns = now_ns
            return
        line_fn = self._line
        if self._pending:
            self._pending.append(data[:nl])
            line = b"".join(self._pending)
            self._pending = []
            line_fn(line, now_ns)
        elif nl:
            line_fn(data[:nl], now_ns)
        start = nl + 1
        find = data.find
        while True:
            nl = find(b"\n", start)
            if nl < 0:
                break
            if nl > start:  # blank lines separate SSE events: nothing to do
                line_fn(data[start:nl], now_ns)
            start = nl + 1
        if start < len(data):
            self._pending.append(data[start:])
            self._pending_ns = now_ns

    def finish(self) -> None:
        """The body ended: interpret a last line that had no newline."""
        if self._pending:
            line = b"".join(self._pending)
            self._pending = []
            if line.strip():
                self._line(line, self._pending_ns)

    def outcome(self) -> Literal["ok", "error", "incomplete"]:
        """`ok` once the end marker arrived, `error` for an error in the stream,
        `incomplete` while (or when) it has neither."""
        if self.error is not None:
            return "error"
        return "ok" if self.done_ns is not None else "incomplete"

    def missing_end_reason(self) -> str:
        raise NotImplementedError

    # -- shared helpers for subclasses ---------------------------------------------------

    def _line(self, line: bytes, now_ns: int) -> None:
        raise NotImplementedError

    def _decode(self, payload: bytes) -> Any:
        """The JSON value of a stripped payload; None (and an error) if it is not JSON."""
        try:
            text = payload.decode()
            obj, end = _scan(text, 0)
            if end == len(text):
                return obj
        except (StopIteration, ValueError):  # StopIteration: no value at index 0
            pass
        if self.error is None:
            self.error = f"malformed event: {excerpt(payload)}"
        return None

    def _event(self, obj: dict[str, Any], now_ns: int) -> None:
        raise NotImplementedError

    def _checked_event(self, obj: Any, raw: bytes, now_ns: int) -> None:
        """Interpret a decoded event; a JSON value of an unexpected shape (not an object,
        `choices` not a list of objects...) is an error, never an exception."""
        if type(obj) is dict:
            try:
                self._event(obj, now_ns)
                return
            except (AttributeError, TypeError, IndexError, KeyError):
                pass
        if self.error is None:
            self.error = f"unexpected event: {excerpt(raw)}"

    def _text_chunk(self, now_ns: int, text: str | None, reasoning: str | None,
                    tokens: int | None) -> None:
        """Record a chunk that carried generated text (`tokens`: its server-reported
        token count, None when the server gave none)."""
        self.chunk_ns.append(now_ns)
        if tokens is None:
            self.tokens_exact = False
            self.chunk_tokens.append(1)
        else:
            # Tokens reported on earlier text-less chunks (e.g. a partial UTF-8 character
            # the server held back) surface with this chunk's text.
            self.chunk_tokens.append(tokens + self._carry)
            self._carry = 0
        if self.capture_text:
            if text:
                self.text.append(text)
            if reasoning:
                self.reasoning.append(reasoning)


class _SseParser(StreamParser):
    """Server-sent events: every `data:` line holding a JSON object is one event."""

    __slots__ = ()

    def _line(self, line: bytes, now_ns: int) -> None:
        # Every event is decoded: a byte-level shortcut for plain text chunks was measured
        # no faster than the direct C scanner call once it checked for the keys that
        # need a full parse.
        if line[:5] != b"data:":
            return  # comment (": ping"), event:/id:/retry: fields, stray "\r"
        payload = line[5:].strip()
        if payload[:1] != b"{":
            self._not_an_object(payload, now_ns)
            return
        obj = self._decode(payload)
        if obj is not None:
            self._checked_event(obj, payload, now_ns)

    def _not_an_object(self, payload: bytes, now_ns: int) -> None:
        """A `data:` payload that is no JSON object: an error, unless the format gives it
        a meaning (`[DONE]`)."""
        if payload and payload != b"[DONE]" and self.error is None:
            self.error = f"unexpected event: {excerpt(payload)}"


class OpenAIParser(_SseParser):
    """Server-sent events from `/v1/chat/completions` (chat=True) or `/v1/completions`."""

    __slots__ = ("chat",)

    def __init__(self, chat: bool, capture_text: bool = True) -> None:
        super().__init__(capture_text)
        self.chat = chat

    def _not_an_object(self, payload: bytes, now_ns: int) -> None:
        if payload == b"[DONE]":
            if self.done_ns is None:
                self.done_ns = now_ns
            return
        super()._not_an_object(payload, now_ns)

    def _event(self, obj: dict[str, Any], now_ns: int) -> None:
        usage = obj.get("usage")
        choices = obj.get("choices")
        if choices:
            choice = choices[0]
            if self.chat:
                delta = choice.get("delta")
                if delta:
                    text = delta.get("content")
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    # Tool-call arguments are generated text too (no captured text).
                    has_text = bool(text or reasoning or delta.get("tool_calls"))
                else:
                    text = reasoning = None
                    has_text = False
            else:
                text = choice.get("text")
                reasoning = None
                has_text = bool(text)
            tokens = None
            if usage:
                # Per-chunk usage (vLLM `continuous_usage_stats`) is cumulative.
                cum = usage.get("completion_tokens")
                if cum is not None:
                    tokens = cum - self._cum_tokens
                    self._cum_tokens = cum
            if has_text:
                self._text_chunk(now_ns, text, reasoning, tokens)
            elif tokens:
                self._carry += tokens
            if choice.get("finish_reason") is not None:
                self.finished = True
        if usage:
            prompt = usage.get("prompt_tokens")
            completion = usage.get("completion_tokens")
            if prompt is not None:
                self.input_tokens = prompt
            if completion is not None:
                self.output_tokens = completion
        elif (choices is None and self.error is None
              and (obj.get("error") is not None or obj.get("object") == "error")):
            err = obj.get("error", obj)
            message = err.get("message", err) if isinstance(err, dict) else err
            self.error = f"error event: {excerpt(str(message))}"

    def missing_end_reason(self) -> str:
        detail = "after a finish_reason" if self.finished else "before any finish_reason"
        return f"stream ended without [DONE] ({detail}, {len(self.chunk_ns)} text chunks)"


class OllamaParser(StreamParser):
    """Newline-delimited JSON from Ollama's `/api/chat` (chat=True) or `/api/generate`."""

    __slots__ = ("chat",)

    def __init__(self, chat: bool, capture_text: bool = True) -> None:
        super().__init__(capture_text)
        self.chat = chat

    def _line(self, line: bytes, now_ns: int) -> None:
        if line == b"\r":
            return
        obj = self._decode(line.strip())
        if obj is not None:
            self._checked_event(obj, line, now_ns)

    def _event(self, obj: dict[str, Any], now_ns: int) -> None:
        if self.chat:
            message = obj.get("message")
            if message:
                text = message.get("content")
                reasoning = message.get("thinking")
                has_text = bool(text or reasoning or message.get("tool_calls"))
            else:
                text = reasoning = None
                has_text = False
        else:
            text = obj.get("response")
            reasoning = obj.get("thinking")
            has_text = bool(text or reasoning)
        if has_text:
            self._text_chunk(now_ns, text, reasoning, None)
        if obj.get("done"):
            self.finished = True
            if self.done_ns is None:
                self.done_ns = now_ns
            prompt = obj.get("prompt_eval_count")
            completion = obj.get("eval_count")
            if prompt is not None:
                self.input_tokens = prompt
            if completion is not None:
                self.output_tokens = completion
            timings = {key: value for key in OLLAMA_TIMINGS
                       if type(value := obj.get(key)) is int}
            if timings:
                self.server_timings = timings
        if obj.get("error") is not None and self.error is None:
            self.error = f"error event: {excerpt(str(obj['error']))}"

    def missing_end_reason(self) -> str:
        return f'stream ended without "done": true ({len(self.chunk_ns)} text chunks)'


class TgiParser(_SseParser):
    """Server-sent events from TGI's native `/generate_stream`.

    Each `data:` event holds one generated token (`token`: `id`, `text`, `logprob`,
    `special`): a non-special token is a text chunk of exactly one token (one with empty
    text is carried to the next text chunk, as for OpenAI). The event whose
    `generated_text` is not null is the last: its arrival is the end marker, and its
    `details` give `generated_tokens` (output) and `input_length` (input). An event with
    `error` is an error. There is no `[DONE]`."""

    __slots__ = ()

    def _event(self, obj: dict[str, Any], now_ns: int) -> None:
        if obj.get("error") is not None:
            if self.error is None:
                self.error = f"error event: {excerpt(str(obj['error']))}"
            return
        token = obj.get("token")
        if token and not token.get("special"):
            text = token.get("text")
            if text:
                self._text_chunk(now_ns, text, None, 1)
            else:
                self._carry += 1
        if obj.get("generated_text") is not None:
            self.finished = True
            if self.done_ns is None:
                self.done_ns = now_ns
            details = obj.get("details")
            if details:
                generated = details.get("generated_tokens")
                prompt = details.get("input_length")
                if type(generated) is int:
                    self.output_tokens = generated
                if type(prompt) is int:
                    self.input_tokens = prompt

    def missing_end_reason(self) -> str:
        return (f"stream ended without its final event (generated_text) "
                f"({len(self.chunk_ns)} text chunks)")


# -- routes and request bodies ----------------------------------------------------------------

class Route(str, enum.Enum):
    """A streaming generation route of an API flavour."""

    OPENAI_COMPLETIONS = "openai-completions"
    OPENAI_CHAT = "openai-chat"
    OLLAMA_GENERATE = "ollama-generate"
    OLLAMA_CHAT = "ollama-chat"
    TGI_GENERATE_STREAM = "tgi-generate-stream"
    """TGI's native streaming API (server-sent events, one token per event)."""

    @property
    def path(self) -> str:
        return _PATHS[self]

    @property
    def chat(self) -> bool:
        return self in (Route.OPENAI_CHAT, Route.OLLAMA_CHAT)

    @property
    def sse(self) -> bool:
        """Server-sent events (`Accept: text/event-stream`), rather than NDJSON."""
        return self not in (Route.OLLAMA_GENERATE, Route.OLLAMA_CHAT)


_PATHS = {
    Route.OPENAI_COMPLETIONS: "/v1/completions",
    Route.OPENAI_CHAT: "/v1/chat/completions",
    Route.OLLAMA_GENERATE: "/api/generate",
    Route.OLLAMA_CHAT: "/api/chat",
    Route.TGI_GENERATE_STREAM: "/generate_stream",
}


def route_for(api: str, *, chat: bool = False, native: bool = False) -> Route:
    """The streaming route of API flavour `api` (`Engine.api`): OpenAI completions or
    chat; Ollama's /api/generate or /api/chat; TGI's OpenAI-compatible chat, or with
    `native` its /generate_stream."""
    if api == "openai" or (api == "tgi" and not native):
        return Route.OPENAI_CHAT if chat or api == "tgi" else Route.OPENAI_COMPLETIONS
    if api == "ollama":
        return Route.OLLAMA_CHAT if chat else Route.OLLAMA_GENERATE
    if api == "tgi":
        return Route.TGI_GENERATE_STREAM
    raise ValueError(f"unknown API flavour {api!r} (known: openai, ollama, tgi)")


def request_body(route: Route, model: str, prompt: str, *, max_tokens: int | None = None,
                 temperature: float | None = None, ignore_eos: bool = False,
                 include_usage: bool = True, continuous_usage: bool = False,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of one streaming request on `route`.

    `ignore_eos` asks OpenAI-compatible servers (vLLM, llama.cpp) to run to `max_tokens`;
    Ollama and TGI's /generate_stream have no such option, so it is not sent there.
    `include_usage` asks OpenAI servers for a final usage chunk; `continuous_usage` for
    cumulative usage in every chunk (vLLM's `continuous_usage_stats`, rejected by strict
    servers). `extra` is merged last (engine-specific sampling options)."""
    if route is Route.TGI_GENERATE_STREAM:
        parameters: dict[str, Any] = {"details": True}
        if max_tokens is not None:
            parameters["max_new_tokens"] = max_tokens
        if temperature:  # TGI rejects temperature 0; greedy is its default
            parameters["do_sample"] = True
            parameters["temperature"] = temperature
        tgi = {"inputs": prompt, "parameters": parameters, "stream": True}
        tgi.update(extra or {})
        return tgi
    body: dict[str, Any] = {"model": model, "stream": True}
    if route.chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if route in (Route.OPENAI_COMPLETIONS, Route.OPENAI_CHAT):
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if ignore_eos:
            body["ignore_eos"] = True
        stream_options = {}
        if include_usage or continuous_usage:
            stream_options["include_usage"] = True
        if continuous_usage:
            stream_options["continuous_usage_stats"] = True
        if stream_options:
            body["stream_options"] = stream_options
    else:
        options: dict[str, Any] = {}
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        if temperature is not None:
            options["temperature"] = temperature
        if options:
            body["options"] = options
    body.update(extra or {})
    return body


def new_parser(route: Route, capture_text: bool = True) -> StreamParser:
    """A fresh parser for one answer on `route`."""
    if route is Route.TGI_GENERATE_STREAM:
        return TgiParser(capture_text=capture_text)
    if route in (Route.OPENAI_COMPLETIONS, Route.OPENAI_CHAT):
        return OpenAIParser(chat=route.chat, capture_text=capture_text)
    return OllamaParser(chat=route.chat, capture_text=capture_text)


def post_stream(base_url: str, route: Route, body: Mapping[str, Any], timeout: float
                ) -> tuple[int, StreamParser | str]:
    """Send one streamed request and read its answer to the end: (HTTP status, the
    finished parser), or with an error status the error body's start instead of a parser
    (status 0: nothing answered, and the text says why)."""
    import urllib.error
    import urllib.request

    parser = new_parser(route)
    request = urllib.request.Request(
        base_url.rstrip("/") + route.path, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept-Encoding": "identity"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while data := response.read1(64 * 1024):
                parser.feed(data, 0)
            parser.finish()
            return response.status, parser
    except urllib.error.HTTPError as exc:
        raw = exc.read(64 * 1024) if exc.fp else b""
        return exc.code, raw.decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, str(getattr(exc, "reason", exc))
