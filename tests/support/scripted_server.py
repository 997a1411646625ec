"""A scripted HTTP streaming server for client tests, on raw asyncio streams.

Raw streams give exact control over the bytes and their timing: each `Write` is one
`transport.write` (one HTTP chunk in chunked mode), each `Sleep` a pause, so tests can
split events mid-line or mid-UTF-8 character, pack several events in one write, close
early, or answer with an HTTP error. The request body's `model` names the script to play.
The server records what it received and when it wrote each step (perf_counter_ns, the
client's clock too), so tests can compare client timestamps with actual send times.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs


@attrs.frozen
class Write:
    data: bytes


@attrs.frozen
class Sleep:
    seconds: float


@attrs.frozen
class Close:
    """Close the connection now (no terminating chunk: an early close)."""


Step = Write | Sleep | Close


@attrs.frozen
class Script:
    steps: tuple[Step, ...] = ()
    status: int = 200
    content_type: str = "text/event-stream"
    chunked: bool = True
    """False: no Content-Length, body delimited by closing the connection."""
    error_body: bytes = b""
    """For status >= 400: sent whole with Content-Length (steps are ignored)."""


@attrs.define
class ServedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_ns: int
    write_ns: list[int] = attrs.field(factory=list)
    """perf_counter_ns just before each Write step was handed to the transport."""


ScriptSource = Script | Callable[[dict[str, Any]], Script]


class ScriptedServer:
    def __init__(self, scripts: dict[str, ScriptSource], *,
                 close_preflights: bool = False) -> None:
        self.scripts = scripts
        self.close_preflights = close_preflights
        """Answer OPTIONS with `Connection: close` and close, as llama-server does for
        a HEAD it does not route."""
        self.requests: list[ServedRequest] = []
        self.preflights: list[int] = []
        """When each OPTIONS request arrived (the client's pool pre-opening): answered 405
        with no body, as a POST-only route of a real server does, and kept out of
        `requests`."""
        self.connections = 0
        self.connected_ns: list[int] = []
        """When each connection was accepted."""
        self.active = 0
        self.max_active = 0
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connected_ns.append(time.perf_counter_ns())
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                received = time.perf_counter_ns()
                lines = head.decode("latin-1").split("\r\n")
                if lines[0].startswith("OPTIONS "):
                    self.preflights.append(received)
                    close = b"Connection: close\r\n" if self.close_preflights else b""
                    writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\n"
                                 b"%sContent-Length: 0\r\n\r\n" % close)
                    await writer.drain()
                    if self.close_preflights:
                        return
                    continue
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = json.loads(body) if body else {}
                served = ServedRequest(path, headers, request, received)
                self.requests.append(served)
                source = self.scripts.get(request.get("model", ""))
                if source is None:
                    script = Script(status=404, error_body=b'{"error": "no such script"}')
                else:
                    script = source(request) if callable(source) else source
                self.active += 1
                self.max_active = max(self.max_active, self.active)
                try:
                    keep_open = await self._play(script, writer, served)
                finally:
                    self.active -= 1
                if not keep_open:
                    return
        finally:
            writer.close()

    async def _play(self, script: Script, writer: asyncio.StreamWriter,
                    served: ServedRequest) -> bool:
        if script.status >= 400:
            writer.write(
                f"HTTP/1.1 {script.status} Error\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(script.error_body)}\r\n\r\n".encode() + script.error_body
            )
            await writer.drain()
            return True
        framing = "Transfer-Encoding: chunked\r\n" if script.chunked else "Connection: close\r\n"
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {script.content_type}\r\n"
                     f"Cache-Control: no-cache\r\n{framing}\r\n".encode())
        await writer.drain()
        for step in script.steps:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Close):
                return False
            else:
                data = step.data
                if script.chunked:
                    data = b"%x\r\n%s\r\n" % (len(data), data)
                served.write_ns.append(time.perf_counter_ns())
                writer.write(data)
                await writer.drain()
        if not script.chunked:
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


# -- building streams ---------------------------------------------------------------------

def sse(obj: Any) -> bytes:
    """One SSE event: `data: <json>` and the blank line."""
    payload = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


DONE = b"data: [DONE]\n\n"


def chat_chunk(content: str | None = None, *, reasoning: str | None = None,
               role: str | None = None, finish: str | None = None,
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    chunk: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def completion_chunk(text: str, *, finish: str | None = None,
                     usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": "cmpl-1", "object": "text_completion",
                             "choices": [{"index": 0, "text": text, "finish_reason": finish}]}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}}


def timed_chat(pieces: Sequence[str | tuple[str, int]], *, ttft: float, gap: float,
               prompt_tokens: int = 7, usage: bool = True, continuous_usage: bool = False,
               role_chunk: bool = True, done: bool = True) -> Script:
    """A chat stream: optional role-only chunk at once, the first piece after `ttft`, each
    next piece `gap` later, then finish, usage and [DONE]. A piece is text (1 token) or
    (text, tokens); with continuous_usage every chunk carries cumulative usage."""
    steps: list[Step] = []
    total = 0

    def cumulative() -> dict[str, int] | None:
        if not continuous_usage:
            return None
        return {"prompt_tokens": prompt_tokens, "completion_tokens": total,
                "total_tokens": prompt_tokens + total}

    if role_chunk:
        steps.append(Write(sse(chat_chunk(role="assistant", content="", usage=cumulative()))))
    for i, piece in enumerate(pieces):
        text, tokens = (piece, 1) if isinstance(piece, str) else piece
        total += tokens
        steps.append(Sleep(ttft if i == 0 else gap))
        steps.append(Write(sse(chat_chunk(text, usage=cumulative()))))
    tail = sse(chat_chunk(finish="length", usage=cumulative()))
    if usage:
        tail += sse(usage_chunk(prompt_tokens, total))
    if done:
        tail += DONE
    steps.append(Write(tail))
    return Script(tuple(steps))


def ndjson(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def timed_ollama(pieces: Sequence[str], *, ttft: float, gap: float, chat: bool,
                 prompt_tokens: int = 5, done: bool = True) -> Script:
    """An Ollama stream: one JSON line per piece, then the `done` line with counts."""
    steps: list[Step] = []
    for i, text in enumerate(pieces):
        if chat:
            line = {"model": "m", "message": {"role": "assistant", "content": text},
                    "done": False}
        else:
            line = {"model": "m", "response": text, "done": False}
        steps += [Sleep(ttft if i == 0 else gap), Write(ndjson(line))]
    if done:
        final: dict[str, Any] = {"model": "m", "done": True, "done_reason": "length",
                                 "prompt_eval_count": prompt_tokens, "eval_count": len(pieces)}
        if chat:
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
        steps.append(Write(ndjson(final)))
    return Script(tuple(steps), content_type="application/x-ndjson")
