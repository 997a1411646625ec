"""Engine conformance: what a live endpoint offers of what KITT needs.

`check(base_url, flavour=...)` probes health, OpenAI completions and chat, the shape of
streamed responses, usage in streams, prompt logprobs, `/tokenize` and `/metrics` (plus
the native streaming APIs of TGI and Ollama) with small real requests, and returns a
typed `Capabilities` record. KITT reads it to choose how to score quality tasks
(`scoring_mode`: loglikelihood needs prompt logprobs) and how to count tokens
(`token_counting`: server usage, the engine's tokenizer, or one token per chunk).

Stdlib HTTP only (it is part of kitt-core); every request has a timeout, and a check that
fails never stops the others.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import attrs

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
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        return urllib.request.urlopen(request, timeout=self.timeout)

    def call(self, path: str, body: Any = None) -> tuple[int, bytes]:
        """(status, body); status 0 when nothing answered (the body says why)."""
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

    def lines(self, path: str, body: Any) -> tuple[int, list[str]]:
        """A streamed response's lines (status, lines); error bodies as one line."""
        try:
            with self._open(path, body) as response:
                return response.status, [line.decode("utf-8", "replace").rstrip("\r\n")
                                         for line in response]
        except urllib.error.HTTPError as exc:
            raw = exc.read(64 * 1024) if exc.fp else b""
            return exc.code, [raw.decode("utf-8", "replace")]
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return 0, [str(getattr(exc, "reason", exc))]


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


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        path = "/v1/chat/completions" if use_chat else "/v1/completions"
        fields: dict[str, Any] = ({"messages": [{"role": "user", "content": PROBE_PROMPT}]}
                                  if use_chat else {"prompt": PROBE_PROMPT})
        body = self._body(**fields, max_tokens=GEN_TOKENS, stream=True,
                          stream_options={"include_usage": True})
        status, lines = self.http.lines(path, body)
        note = ""
        if status == 400 or status == 422:  # strict servers reject stream_options
            body.pop("stream_options")
            status, lines = self.http.lines(path, body)
            note = " (stream_options rejected)"
        if status != 200:
            failure = _failed(status, "\n".join(lines))
            return (Check("streaming", NO, f"POST {path}: {failure}"),
                    Check("usage_in_stream", NO, "no stream"))
        shape = _sse_shape(lines, chat=use_chat)
        where = f"POST {path}: "
        if shape.problem:
            streaming = Check("streaming", NO, where + shape.problem)
        else:
            streaming = Check("streaming", YES, f"{where}{shape.text_chunks} text chunks, "
                                                "[DONE]")
        if shape.usage is not None:
            usage = Check("usage_in_stream", YES,
                          f"completion_tokens={shape.usage.get('completion_tokens')}")
        else:
            usage = Check("usage_in_stream", NO, "no usage chunk" + note)
        return streaming, usage

    def prompt_logprobs(self) -> Check:
        status, body = self.http.json("/v1/completions", self._body(**PROMPT_LOGPROBS_PROBE))
        supported, detail = judge_prompt_logprobs(status, body)
        return Check("prompt_logprobs", YES if supported else NO, detail)

    def tokenize(self) -> Check:
        bodies: list[dict[str, Any]] = [
            {"inputs": PROBE_PROMPT},  # TGI: a list of {id, text, start, stop}
            self._body(prompt=PROBE_PROMPT),  # vLLM: {"tokens": [...], "count": n}
            {"content": PROBE_PROMPT},  # llama-server: {"tokens": [...]}
        ]
        if self.flavour != "tgi":
            bodies.append(bodies.pop(0))
        last = ""
        for body in bodies:
            body.pop("temperature", None)
            status, answer = self.http.json("/tokenize", body)
            ids = _token_ids(answer) if status == 200 else None
            if ids:
                shape = next(iter(k for k in body if k != "model"))
                return Check("tokenize", YES, f"{len(ids)} tokens (request field `{shape}`)")
            last = _failed(status, answer)
            if status in (0, 404, 405):
                break  # no such endpoint: other request shapes will not help
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
        status, lines = self.http.lines("/generate_stream", {
            "inputs": PROBE_PROMPT, "parameters": {"max_new_tokens": GEN_TOKENS,
                                                   "details": True}})
        if status != 200:
            return Check("native_stream", NO, "POST /generate_stream: "
                         + _failed(status, "\n".join(lines)))
        tokens, final = 0, None
        for line in lines:
            if not line.startswith("data:"):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                return Check("native_stream", NO, f"malformed event {_short(line)}")
            if event.get("error"):
                return Check("native_stream", NO, f"error event: {_short(event['error'])}")
            token = event.get("token") or {}
            if not {"id", "text", "logprob", "special"} <= set(token):
                return Check("native_stream", NO, f"token without id/text/logprob/special: "
                                                  f"{_short(event)}")
            tokens += 1
            if event.get("generated_text") is not None:
                final = event
        if final is None:
            return Check("native_stream", NO, f"{tokens} tokens, no final event with "
                                              "generated_text")
        details = final.get("details") or {}
        return Check("native_stream", YES, f"/generate_stream: {tokens} token events, "
                     f"details.generated_tokens={details.get('generated_tokens')}")

    def _ollama_streams(self) -> Check:
        results = []
        for path, fields in (("/api/generate", {"prompt": PROBE_PROMPT}),
                             ("/api/chat", {"messages": [{"role": "user",
                                                          "content": PROBE_PROMPT}]})):
            body = {**fields, "stream": True,
                    "options": {"num_predict": GEN_TOKENS, "temperature": 0}}
            if self.model:
                body["model"] = self.model
            status, lines = self.http.lines(path, body)
            if status != 200:
                return Check("native_stream", NO, f"POST {path}: "
                             + _failed(status, "\n".join(lines)))
            objects = []
            for line in filter(None, (raw.strip() for raw in lines)):
                try:
                    objects.append(json.loads(line))
                except ValueError:
                    return Check("native_stream", NO, f"{path}: malformed line "
                                                      f"{_short(line)}")
            final = objects[-1] if objects else {}
            if not final.get("done"):
                return Check("native_stream", NO, f"{path}: no final object with done: true")
            missing = [k for k in ("eval_count", "eval_duration", "total_duration")
                       if k not in final]
            if missing:
                return Check("native_stream", NO, f"{path}: final object lacks "
                                                  f"{', '.join(missing)}")
            results.append(f"{path} {len(objects) - 1} chunks, eval_count="
                           f"{final['eval_count']}")
        return Check("native_stream", YES, "; ".join(results) + " (with server timings)")


@attrs.frozen
class _Shape:
    text_chunks: int = 0
    usage: dict[str, Any] | None = None
    problem: str | None = None


def _sse_shape(lines: list[str], *, chat: bool) -> _Shape:
    """Check an OpenAI SSE stream: `data:` JSON chunks with choices, then [DONE]."""
    chunks, usage, done = 0, None, False
    for line in lines:
        if not line.strip() or line.startswith(":"):
            continue
        if not line.startswith("data:"):
            if line.split(":", 1)[0] in ("event", "id", "retry"):
                continue
            return _Shape(problem=f"not server-sent events: {_short(line)}")
        payload = line[5:].strip()
        if payload == "[DONE]":
            done = True
            continue
        if done:
            return _Shape(problem="data after [DONE]")
        try:
            obj = json.loads(payload)
        except ValueError:
            return _Shape(problem=f"malformed chunk {_short(payload)}")
        if not isinstance(obj, dict) or "choices" not in obj:
            return _Shape(problem=f"chunk without choices: {_short(payload)}")
        if obj.get("usage"):
            usage = obj["usage"]
        for choice in obj["choices"] or []:
            text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
            if text:
                chunks += 1
    if not done:
        return _Shape(chunks, usage, "the stream did not end with data: [DONE]")
    if not chunks:
        return _Shape(chunks, usage, "no chunk carried text")
    return _Shape(chunks, usage)


def _token_ids(answer: Any) -> list[int] | None:
    if isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
        tokens = answer["tokens"]
        # llama-server with `with_pieces` answers [{"id": .., "piece": ..}]
        return [t["id"] if isinstance(t, dict) else t for t in tokens] or None
    if isinstance(answer, list) and answer and all(isinstance(t, dict) and "id" in t
                                                   for t in answer):
        return [t["id"] for t in answer]
    return None


# -- entry point ------------------------------------------------------------------------------

def _engine_profile(engine: str | None) -> tuple[str, str, str | None, Callable, str | None]:
    """(flavour, health path, metrics path, is_healthy, engine name) for `-e ENGINE`: an
    installed engine plugin describes itself; otherwise the name is taken as an API
    flavour (openai, tgi, ollama), so no plugin is needed to check a server."""
    def default_healthy(status: int, body: bytes) -> bool:
        return status == 200

    if engine:
        from kitt import plugins

        found = plugins.engines().get(engine)
        if found is not None:
            flavour = found.api if found.api in FLAVOURS else "openai"
            return (flavour, found.health_path, found.metrics_path, found.is_healthy,
                    found.name)
    flavour = engine if engine in FLAVOURS else "openai"
    health = {"ollama": "/api/tags"}.get(flavour, "/health")
    metrics = None if flavour == "ollama" else "/metrics"
    return flavour, health, metrics, default_healthy, engine


def check(base_url: str, *, engine: str | None = None, model: str | None = None,
          timeout: float = 60.0, progress: Callable[[str], None] | None = None
          ) -> Capabilities:
    """Probe the server at `base_url`. `engine` is an installed engine's name or an API
    flavour; `model` is the name to request (default: the first the server lists)."""
    started = time.monotonic()
    flavour, health_path, metrics_path, healthy, engine_name = _engine_profile(engine)
    probe = _Probe(_Http(base_url, timeout), flavour, model, health_path, metrics_path,
                   healthy)
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
                        engine_name, time.monotonic() - started)


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
