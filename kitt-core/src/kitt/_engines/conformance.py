"""Engine conformance: what a live endpoint offers of what KITT needs.

`check(base_url, flavour=...)` probes health, OpenAI completions and chat, the shape of
streamed responses, usage in streams, prompt logprobs, `/tokenize` and `/metrics` (plus
the native streaming APIs of TGI and Ollama) with small real requests, and returns a
typed `Capabilities` record. KITT reads it to choose how to score quality tasks
(`scoring_mode`: loglikelihood needs prompt logprobs) and how to count tokens
(`token_counting`: server usage, the engine's tokenizer, or one token per chunk).

Requests and streams go through the same wire code as KITT's benchmarks (`streams`,
`tokenize`), so what passes here is what a run will see. Stdlib HTTP only; every request
has a timeout, and a check that fails never stops the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from kitt._engines.streams import Route, StreamParser, excerpt, post_stream, request_body
from kitt._engines.tokenize import EngineTokenizer, TokenizerError
from kitt.engine import TokenizeApi

FLAVOURS = ("openai", "tgi", "ollama")
PROBE_PROMPT = "The quick brown fox jumps over the lazy dog."
GEN_TOKENS = 4

YES, NO, NA = "yes", "no", "n/a"


@attrs.frozen
class Check:
    """One capability: `status` is yes, no or n/a (not applicable to this API flavour)."""

    name: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == YES


# The checks, in the order they are run and printed, with what each one means.
CHECKS = {
    "health": "the health endpoint says ready",
    "completions": "POST /v1/completions answers with text",
    "chat": "POST /v1/chat/completions answers with a message",
    "streaming": "streamed responses are SSE `data:` JSON chunks ending in [DONE]",
    "usage_in_stream": "a stream reports token usage (stream_options.include_usage)",
    "prompt_logprobs": "echo + logprobs return a logprob per prompt token (loglikelihood)",
    "tokenize": "POST /tokenize returns token ids",
    "metrics": "Prometheus metrics at the metrics path",
    "native_stream": "the engine's own streaming API (TGI /generate_stream, Ollama "
                     "/api/generate and /api/chat) with token details or server timings",
}


@attrs.frozen
class Capabilities:
    base_url: str
    flavour: str
    model: str | None
    checks: tuple[Check, ...]
    engine: str | None = None
    seconds: float = 0.0

    def get(self, name: str) -> Check:
        for item in self.checks:
            if item.name == name:
                return item
        return Check(name, NA, "not checked")

    def has(self, name: str) -> bool:
        return self.get(name).ok

    @property
    def prompt_logprobs(self) -> bool:
        return self.has("prompt_logprobs")

    @property
    def usage_in_stream(self) -> bool:
        return self.has("usage_in_stream")

    @property
    def scoring_mode(self) -> str:
        """`loglikelihood` when prompt logprobs come back, else `generate` (quality tasks
        that need loglikelihoods cannot run; generation tasks can)."""
        return "loglikelihood" if self.prompt_logprobs else "generate"

    @property
    def token_counting(self) -> str:
        """`usage` (the server counts: stream usage, or Ollama's eval counts), `tokenize`
        (count with the engine's /tokenize afterwards), else `chunks` (one per chunk)."""
        if self.usage_in_stream or (self.flavour in ("ollama", "tgi")
                                    and self.has("native_stream")):
            return "usage"
        if self.has("tokenize"):
            return "tokenize"
        return "chunks"

    @property
    def usable(self) -> bool:
        """What a benchmark run needs: healthy, and some generation API that streams."""
        generates = self.has("completions") or self.has("chat") or self.has("native_stream")
        streams = self.has("streaming") or self.has("native_stream")
        return self.has("health") and generates and streams

    def to_json(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "flavour": self.flavour, "engine": self.engine,
                "model": self.model, "usable": self.usable,
                "scoring_mode": self.scoring_mode, "token_counting": self.token_counting,
                "seconds": round(self.seconds, 3),
                "checks": {c.name: {"status": c.status, "detail": c.detail}
                           for c in self.checks}}


# -- HTTP -----------------------------------------------------------------------------------

class _Http:
    def __init__(self, base_url: str, timeout: float):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _open(self, path: str, body: Any = None) -> Any:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        return urllib.request.urlopen(request, timeout=self.timeout)

    def call(self, path: str, body: Any = None) -> tuple[int, bytes]:
        """(status, body); status 0 when nothing answered (the body says why)."""
        import urllib.error

        try:
            with self._open(path, body) as response:
                return response.status, response.read(4 << 20)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(64 * 1024) if exc.fp else b""
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return 0, str(getattr(exc, "reason", exc)).encode()

    def json(self, path: str, body: Any = None) -> tuple[int, Any]:
        status, raw = self.call(path, body)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def stream(self, route: Route, body: Any) -> tuple[int, StreamParser | str]:
        return post_stream(self.base_url, route, body, self.timeout)


PROMPT_LOGPROBS_PROBE = {"prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0,
                         "echo": True, "logprobs": 1}
"""The completions request (plus `model`) whose answer `judge_prompt_logprobs` reads."""


def judge_prompt_logprobs(status: int, body: Any) -> tuple[bool, str]:
    """Whether an answer to PROMPT_LOGPROBS_PROBE scored the prompt's tokens (what
    loglikelihood evaluation needs), and why. llama-server, for one, ignores `echo` and
    scores the generated token only."""
    try:
        logprobs = body["choices"][0].get("logprobs") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        return False, _failed(status, body)
    values = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    if not isinstance(values, list):
        return False, "no `token_logprobs` (echo ignored, or logprobs in another format)"
    # The prompt is several tokens with any tokenizer: echoed, they all come back.
    scored = [v for v in values[:-1] if isinstance(v, int | float)]
    if len(values) < 3 or not scored:
        return False, f"{len(values)} token logprob(s): the prompt is not echoed with logprobs"
    return True, f"{len(values)} tokens scored (prompt + 1)"


def probe_prompt_logprobs(base_url: str, model: str, *, timeout: float = 60.0
                          ) -> tuple[bool, str]:
    """Whether the engine at `base_url` returns a logprob for every prompt token (what
    loglikelihood scoring needs), and why: the conformance check's own probe and verdict,
    so `kitt engines conformance` and quality scoring always agree."""
    status, body = _Http(base_url, timeout).json(
        "/v1/completions", {"model": model, **PROMPT_LOGPROBS_PROBE})
    return judge_prompt_logprobs(status, body)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str | bytes) else json.dumps(value)
    return excerpt(text, limit)


def _failed(status: int, body: Any) -> str:
    return f"no answer: {_short(body)}" if status == 0 else f"HTTP {status}: {_short(body)}"


# -- the checks -----------------------------------------------------------------------------

@attrs.define
class _Probe:
    http: _Http
    flavour: str
    model: str | None
    health_path: str
    metrics_path: str | None
    is_healthy: Callable[[int, bytes], bool]
    tokenize_apis: list[tuple[str, TokenizeApi]]
    """(engine name, its tokenize endpoint) to try, in order."""

    def health(self) -> Check:
        paths = [self.health_path]
        if self.flavour == "openai" and self.health_path == "/health":
            paths.append("/v1/models")  # servers without /health (llama-cpp-python)
        last = ""
        for path in paths:
            status, body = self.http.call(path)
            if status and self.is_healthy(status, body):
                return Check("health", YES, f"GET {path}: HTTP {status}")
            last = f"GET {path}: {_failed(status, body)}"
            if status == 0:
                break
        return Check("health", NO, last)

    def discover_model(self) -> str | None:
        if self.flavour == "ollama":
            status, body = self.http.json("/api/tags")
            models = body.get("models") if status == 200 and isinstance(body, dict) else None
            return models[0].get("name") if models else None
        status, body = self.http.json("/v1/models")
        if status == 200 and isinstance(body, dict) and body.get("data"):
            return body["data"][0].get("id")
        if self.flavour == "tgi":
            status, body = self.http.json("/info")
            if status == 200 and isinstance(body, dict):
                return body.get("model_id")
        return None

    def _body(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"temperature": 0, **fields}
        if self.model:
            body["model"] = self.model
        return body

    def completions(self) -> Check:
        status, body = self.http.json("/v1/completions", self._body(
            prompt=PROBE_PROMPT, max_tokens=GEN_TOKENS))
        try:
            text = body["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            return Check("completions", NO, _failed(status, body))
        usage = body.get("usage") or {}
        return Check("completions", YES if isinstance(text, str) else NO,
                     f"{usage.get('completion_tokens', '?')} tokens: {_short(text, 40)!r}")

    def chat(self) -> Check:
        status, body = self.http.json("/v1/chat/completions", self._body(
            messages=[{"role": "user", "content": PROBE_PROMPT}], max_tokens=GEN_TOKENS))
        try:
            content = body["choices"][0]["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            return Check("chat", NO, _failed(status, body))
        return Check("chat", YES, f"{_short(content or '', 40)!r}")

    def streaming(self, use_chat: bool) -> tuple[Check, Check]:
        """(streaming, usage_in_stream) from one streamed request."""
        route = Route.OPENAI_CHAT if use_chat else Route.OPENAI_COMPLETIONS
        body = request_body(route, self.model or "", PROBE_PROMPT, max_tokens=GEN_TOKENS,
                            temperature=0, include_usage=True)
        if not self.model:
            body.pop("model")
        status, parsed = self.http.stream(route, body)
        note = ""
        if status in (400, 422):  # strict servers reject stream_options
            body.pop("stream_options")
            status, parsed = self.http.stream(route, body)
            note = " (stream_options rejected)"
        where = f"POST {route.path}: "
        if not isinstance(parsed, StreamParser) or status != 200:
            return (Check("streaming", NO, where + _failed(status, parsed)),
                    Check("usage_in_stream", NO, "no stream"))
        problem = _stream_problem(parsed)
        streaming = (Check("streaming", NO, where + problem) if problem else
                     Check("streaming", YES, f"{where}{len(parsed.chunk_ns)} text chunks, "
                                             "[DONE]"))
        if parsed.output_tokens is not None:
            usage = Check("usage_in_stream", YES, f"completion_tokens={parsed.output_tokens}")
        else:
            usage = Check("usage_in_stream", NO, "no usage chunk" + note)
        return streaming, usage

    def prompt_logprobs(self) -> Check:
        status, body = self.http.json("/v1/completions", self._body(**PROMPT_LOGPROBS_PROBE))
        supported, detail = judge_prompt_logprobs(status, body)
        return Check("prompt_logprobs", YES if supported else NO, detail)

    def tokenize(self) -> Check:
        if not self.tokenize_apis:
            return Check("tokenize", NO, f"no installed {self.flavour} engine describes a "
                                         "tokenize endpoint")
        last = ""
        for name, api in self.tokenize_apis:
            tokenizer = EngineTokenizer(self.http.base_url, api, self.model,
                                        self.http.timeout)
            try:
                ids = tokenizer.encode(PROBE_PROMPT)
            except TokenizerError as exc:
                last = str(exc)
                continue
            if ids:
                return Check("tokenize", YES, f"{len(ids)} tokens (POST {api.path}, as "
                                              f"{name} has it)")
            last = f"POST {api.path} returned no tokens"
        return Check("tokenize", NO, last)

    def metrics(self) -> Check:
        if not self.metrics_path:
            return Check("metrics", NA, "the engine has no metrics endpoint")
        status, body = self.http.call(self.metrics_path)
        text = body.decode("utf-8", "replace")
        if status == 200 and ("# TYPE" in text or "# HELP" in text):
            count = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
            return Check("metrics", YES, f"GET {self.metrics_path}: {count} samples")
        return Check("metrics", NO, f"GET {self.metrics_path}: {_failed(status, text)}")

    def native_stream(self) -> Check:
        if self.flavour == "tgi":
            return self._tgi_stream()
        if self.flavour == "ollama":
            return self._ollama_streams()
        return Check("native_stream", NA, "OpenAI API only")

    def _tgi_stream(self) -> Check:
        route = Route.TGI_GENERATE_STREAM
        status, parsed = self.http.stream(route, request_body(
            route, "", PROBE_PROMPT, max_tokens=GEN_TOKENS))
        if not isinstance(parsed, StreamParser) or status != 200:
            return Check("native_stream", NO, f"POST {route.path}: {_failed(status, parsed)}")
        problem = _stream_problem(parsed)
        if problem:
            return Check("native_stream", NO, f"{route.path}: {problem}")
        if parsed.output_tokens is None:
            return Check("native_stream", NO, f"{route.path}: the final event has no "
                                              "details.generated_tokens")
        return Check("native_stream", YES, f"{route.path}: {len(parsed.chunk_ns)} token "
                     f"events, details.generated_tokens={parsed.output_tokens}")

    def _ollama_streams(self) -> Check:
        results = []
        for route in (Route.OLLAMA_GENERATE, Route.OLLAMA_CHAT):
            body = request_body(route, self.model or "", PROBE_PROMPT, max_tokens=GEN_TOKENS,
                                temperature=0)
            status, parsed = self.http.stream(route, body)
            if not isinstance(parsed, StreamParser) or status != 200:
                return Check("native_stream", NO, f"POST {route.path}: "
                             + _failed(status, parsed))
            problem = _stream_problem(parsed)
            if problem:
                return Check("native_stream", NO, f"{route.path}: {problem}")
            timings = parsed.server_timings or {}
            missing = [k for k in ("eval_count", "eval_duration", "total_duration")
                       if k not in timings]
            if missing:
                return Check("native_stream", NO, f"{route.path}: final object lacks "
                                                  f"{', '.join(missing)}")
            results.append(f"{route.path} {len(parsed.chunk_ns)} chunks, eval_count="
                           f"{timings['eval_count']}")
        return Check("native_stream", YES, "; ".join(results) + " (with server timings)")


def _stream_problem(parser: StreamParser) -> str | None:
    """What is wrong with a finished stream for KITT, or None."""
    if parser.error is not None:
        return parser.error
    if parser.done_ns is None:
        return parser.missing_end_reason()
    if not parser.chunk_ns:
        return "no chunk carried text"
    return None


# -- entry point ------------------------------------------------------------------------------

@attrs.frozen
class _Profile:
    flavour: str
    health_path: str
    metrics_path: str | None
    is_healthy: Callable[[int, bytes], bool]
    engine: str | None
    tokenize_apis: list[tuple[str, TokenizeApi]]


def _default_healthy(status: int, body: bytes) -> bool:
    return status == 200


def _engine_profile(engine: str | None) -> _Profile:
    """What `-e ENGINE` says about the server: an installed engine plugin describes
    itself; otherwise the name is taken as an API flavour (openai, tgi, ollama), so no
    plugin is needed to check a server, and the tokenize endpoints of the installed
    engines of that flavour are tried."""
    from kitt import plugins

    engines = plugins.engines()
    found = engines.get(engine) if engine else None
    if found is not None:
        flavour = found.api if found.api in FLAVOURS else "openai"
        apis = [(found.name, found.tokenize_api)] if found.tokenize_api else []
        return _Profile(flavour, found.health_path, found.metrics_path, found.is_healthy,
                        found.name, apis)
    flavour = engine if engine in FLAVOURS else "openai"
    apis: list[tuple[str, TokenizeApi]] = []
    for other in engines.values():
        api = other.tokenize_api
        if other.api == flavour and api is not None and all(api != a for _, a in apis):
            apis.append((other.name, api))
    return _Profile(flavour, {"ollama": "/api/tags"}.get(flavour, "/health"),
                    None if flavour == "ollama" else "/metrics", _default_healthy, engine,
                    apis)


def check(base_url: str, *, engine: str | None = None, model: str | None = None,
          timeout: float = 60.0, progress: Callable[[str], None] | None = None
          ) -> Capabilities:
    """Probe the server at `base_url`. `engine` is an installed engine's name or an API
    flavour; `model` is the name to request (default: the first the server lists)."""
    started = time.monotonic()
    profile = _engine_profile(engine)
    flavour = profile.flavour
    probe = _Probe(_Http(base_url, timeout), flavour, model, profile.health_path,
                   profile.metrics_path, profile.is_healthy, profile.tokenize_apis)
    say = progress or (lambda _: None)
    results: list[Check] = []
    say("health")
    results.append(probe.health())
    if results[0].ok:
        if probe.model is None:
            probe.model = probe.discover_model()
        results.extend(_generation_checks(probe, say))
    else:
        results.extend(Check(name, NO, "not checked: the server is not healthy")
                       for name in CHECKS if name != "health")
    order = list(CHECKS)
    results.sort(key=lambda c: order.index(c.name))
    return Capabilities(base_url.rstrip("/"), flavour, probe.model, tuple(results),
                        profile.engine, time.monotonic() - started)


def _generation_checks(probe: _Probe, say: Callable[[str], None]) -> Iterator[Check]:
    say("completions")
    completions = probe.completions()
    yield completions
    say("chat")
    chat = probe.chat()
    yield chat
    say("streaming")
    if completions.ok or chat.ok:
        yield from probe.streaming(use_chat=not completions.ok)
    else:
        yield Check("streaming", NO, "no OpenAI generation endpoint to stream from")
        yield Check("usage_in_stream", NO, "no stream")
    say("prompt logprobs")
    yield (probe.prompt_logprobs() if completions.ok
           else Check("prompt_logprobs", NO, "no completions endpoint"))
    say("tokenize")
    yield probe.tokenize()
    say("metrics")
    yield probe.metrics()
    say("native stream")
    yield probe.native_stream()
