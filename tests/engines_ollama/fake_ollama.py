"""A local stand-in for an Ollama server, following Ollama's documented HTTP API.

Endpoints: /api/version, /api/tags, HEAD/POST /api/blobs/sha256:<hex> (the body's
SHA-256 must match), /api/create (`files`: name -> digest of uploaded blobs), /api/pull,
/api/generate and /api/chat (NDJSON streams; the last object has `done: true`,
`done_reason`, `total_duration`, `load_duration`, `prompt_eval_count`,
`prompt_eval_duration`, `eval_count`, `eval_duration`; `stream: false` gives that object
alone), and the OpenAI-compatible /v1/chat/completions and /v1/completions. Like Ollama
it has no /metrics and no /tokenize.

The "model" is arithmetic: reply token i is " w{i}". Run as `ollama serve` (the address
comes from OLLAMA_HOST, as Ollama's does); FAKE_OLLAMA_PULLABLE lists tags /api/pull
"finds" (comma separated); FAKE_OLLAMA_LOG appends one line per API call (for tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from datetime import datetime, timezone

from aiohttp import web

VERSION = "0.12.3-fake"


def _full(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class FakeOllama:
    def __init__(self) -> None:
        self.blobs: dict[str, int] = {}
        self.models: dict[str, dict] = {}
        self.loaded: set[str] = set()
        self.pullable = {_full(t) for t in
                         os.environ.get("FAKE_OLLAMA_PULLABLE", "").split(",") if t}
        self.log_path = os.environ.get("FAKE_OLLAMA_LOG")

    def log(self, line: str) -> None:
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")

    @web.middleware
    async def logging(self, request: web.Request, handler):
        self.log(f"{request.method} {request.path}")
        return await handler(request)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    async def tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": list(self.models.values())})

    def _add(self, name: str, size: int) -> None:
        name = _full(name)
        self.models[name] = {
            "name": name, "model": name, "size": size,
            "modified_at": datetime.now(timezone.utc).isoformat(),
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": {"format": "gguf", "family": "llama", "parameter_size": "0.1M",
                        "quantization_level": "F32"}}

    async def head_blob(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if request.match_info["digest"] in self.blobs else 404)

    async def post_blob(self, request: web.Request) -> web.Response:
        digest = request.match_info["digest"]
        data = await request.read()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            return web.json_response({"error": "digest mismatch"}, status=400)
        self.blobs[digest] = len(data)
        return web.Response(status=201)

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body.get("model")
        files = body.get("files") or {}
        if not name or not (files or body.get("from")):
            return web.json_response({"error": "neither 'from' or 'files' was specified"},
                                     status=400)
        missing = [f for f, d in files.items() if d not in self.blobs]
        if missing:
            return web.json_response({"error": f"blob for {missing[0]} not found"},
                                     status=400)
        self._add(name, sum(self.blobs[d] for d in files.values()))
        if body.get("stream", True):
            return await self._ndjson(request, [{"status": "parsing GGUF"},
                                                {"status": "success"}])
        return web.json_response({"status": "success"})

    async def pull(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = _full(body["model"])
        if name not in self.pullable:
            return web.json_response({"error": "pull model manifest: file does not exist"},
                                     status=500)
        self._add(name, 1234)
        return web.json_response({"status": "success"})

    async def _ndjson(self, request: web.Request, objects: list[dict]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for obj in objects:
            await response.write((json.dumps(obj) + "\n").encode())
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    def _model(self, body: dict) -> str | None:
        name = _full(str(body.get("model") or ""))
        return name if name in self.models else None

    async def generate(self, request: web.Request) -> web.StreamResponse:
        return await self._native(request, chat=False)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._native(request, chat=True)

    async def _native(self, request: web.Request, chat: bool) -> web.StreamResponse:
        start = time.perf_counter_ns()
        body = await request.json()
        if not body.get("model"):
            return web.json_response({"error": "model is required"}, status=400)
        name = self._model(body)
        if name is None:
            return web.json_response({"error": f"model '{body.get('model')}' not found"},
                                     status=404)
        load_ns = 0 if name in self.loaded else 2_000_000
        self.loaded.add(name)
        if chat:
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        else:
            prompt = body.get("prompt", "")
        n = (body.get("options") or {}).get("num_predict", 16)
        now = datetime.now(timezone.utc).isoformat()
        parts = []
        for i in range(n):
            part = {"model": name, "created_at": now, "done": False}
            if chat:
                part["message"] = {"role": "assistant", "content": f" w{i}"}
            else:
                part["response"] = f" w{i}"
            parts.append(part)
        final = {"model": name, "created_at": now, "done": True,
                 "done_reason": "length" if n else "stop",
                 "total_duration": 0, "load_duration": load_ns,
                 "prompt_eval_count": len(prompt.split()), "prompt_eval_duration": 1_500_000,
                 "eval_count": n, "eval_duration": 250_000 * n}
        if chat:
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
            final["context"] = list(range(len(prompt.split()) + n))
        final["total_duration"] = time.perf_counter_ns() - start + load_ns + 1_500_000
        if not body.get("stream", True):
            text = "".join(p["message"]["content"] if chat else p["response"] for p in parts)
            if chat:
                final["message"]["content"] = text
            else:
                final["response"] = text
            return web.json_response(final)
        return await self._ndjson(request, [*parts, final])

    async def openai(self, request: web.Request) -> web.StreamResponse:
        chat = request.path.endswith("/chat/completions")
        body = await request.json()
        name = self._model(body)
        if name is None:
            return web.json_response(
                {"error": {"message": f"model \"{body.get('model')}\" not found, try "
                                      "pulling it first", "type": "api_error",
                           "param": None, "code": None}}, status=404)
        n = body.get("max_tokens") or 16
        prompt = (" ".join(str(m.get("content", "")) for m in body.get("messages", []))
                  if chat else str(body.get("prompt", "")))
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": n,
                 "total_tokens": len(prompt.split()) + n}
        kind = "chat.completion" if chat else "text_completion"
        created = int(time.time())
        if not body.get("stream"):
            text = "".join(f" w{i}" for i in range(n))
            choice = ({"index": 0, "message": {"role": "assistant", "content": text},
                       "finish_reason": "length"} if chat else
                      {"index": 0, "text": text, "finish_reason": "length"})
            return web.json_response({"id": "chatcmpl-1", "object": kind, "created": created,
                                      "model": name, "system_fingerprint": "fp_ollama",
                                      "choices": [choice], "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(n):
            finish = "length" if i == n - 1 else None
            choice = ({"index": 0, "delta": {"role": "assistant", "content": f" w{i}"},
                       "finish_reason": finish} if chat else
                      {"index": 0, "text": f" w{i}", "finish_reason": finish})
            chunk = {"id": "chatcmpl-1", "object": f"{kind}.chunk" if chat else kind,
                     "created": created, "model": name, "system_fingerprint": "fp_ollama",
                     "choices": [choice]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            chunk = {"id": "chatcmpl-1", "object": f"{kind}.chunk" if chat else kind,
                     "created": created, "model": name, "choices": [], "usage": usage}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.logging], client_max_size=1 << 30)
        app.add_routes([
            web.get("/", self.root), web.get("/api/version", self.version),
            web.get("/api/tags", self.tags),
            web.head("/api/blobs/{digest}", self.head_blob),
            web.post("/api/blobs/{digest}", self.post_blob),
            web.post("/api/create", self.create), web.post("/api/pull", self.pull),
            web.post("/api/generate", self.generate), web.post("/api/chat", self.chat),
            web.post("/v1/chat/completions", self.openai),
            web.post("/v1/completions", self.openai),
        ])
        return app


def main() -> None:
    if sys.argv[1:2] != ["serve"]:
        raise SystemExit("fake ollama: only `serve` is implemented")
    host, _, port = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434").rpartition(":")
    fake = FakeOllama()
    fake.log(f"serve OLLAMA_HOST={host}:{port} OLLAMA_MODELS={os.environ.get('OLLAMA_MODELS')}"
             f" OLLAMA_NUM_PARALLEL={os.environ.get('OLLAMA_NUM_PARALLEL')}")
    web.run_app(fake.app(), host=host or "127.0.0.1", port=int(port), print=None)


if __name__ == "__main__":
    main()
