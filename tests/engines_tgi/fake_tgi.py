"""A local stand-in for a TGI server, following TGI's documented HTTP API.

It answers what KITT uses: /health, /info, /generate, /generate_stream (SSE, one `token`
object {id, text, logprob, special} per event, the last one with `generated_text` and
`details`), the OpenAI-compatible /v1/chat/completions (the Messages API) and
/v1/completions (streaming, `stream_options.include_usage`), /tokenize and /metrics.

The "model" is arithmetic: token i of a reply is " w{i}", ids and logprobs are fixed
functions of the position, so tests can predict every byte.

Run as `text-generation-launcher` (same arguments: --model-id, --hostname, --port,
--max-input-tokens, --max-total-tokens, ...) or `python fake_tgi.py --port P`.
FAKE_TGI_LOADING_S makes /health answer 503 for that long first (a model loading).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from aiohttp import web

VERSION = "3.3.4-fake"


def tokenize(text: str) -> list[dict]:
    """Whitespace "tokens" with offsets, ids from their bytes (stable across runs)."""
    tokens, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        pos = start + len(word)
        tokens.append({"id": sum(word.encode()) % 997 + 3, "text": word, "start": start,
                       "stop": pos})
    return tokens


def reply_tokens(n: int) -> list[dict]:
    return [{"id": 1000 + i, "text": f" w{i}", "logprob": -0.5 - i / 100, "special": False}
            for i in range(n)]


class FakeTgi:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.started = time.monotonic()
        self.loading_s = float(os.environ.get("FAKE_TGI_LOADING_S", "0"))
        self.requests = 0

    def max_new(self, requested: int | None, prompt: str) -> int:
        limit = self.args.max_total_tokens - len(tokenize(prompt))
        return max(0, min(requested if requested is not None else 20, limit))

    async def health(self, request: web.Request) -> web.Response:
        if time.monotonic() - self.started < self.loading_s:
            return web.json_response({"error": "model is loading"}, status=503)
        return web.Response(status=200)

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response({
            "model_id": self.args.model_id, "model_sha": None, "model_pipeline_tag": None,
            "max_concurrent_requests": 128, "max_best_of": 2, "max_stop_sequences": 4,
            "max_input_tokens": self.args.max_input_tokens,
            "max_total_tokens": self.args.max_total_tokens, "validation_workers": 2,
            "max_client_batch_size": 4, "router": "text-generation-router",
            "version": VERSION, "sha": None, "docker_label": None})

    def _check(self, prompt: str) -> web.Response | None:
        if len(tokenize(prompt)) > self.args.max_input_tokens:
            return web.json_response(
                {"error": f"Input validation error: `inputs` must have less than "
                          f"{self.args.max_input_tokens} tokens.",
                 "error_type": "validation"}, status=422)
        return None

    async def generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt, params = body["inputs"], body.get("parameters") or {}
        if (bad := self._check(prompt)) is not None:
            return bad
        self.requests += 1
        tokens = reply_tokens(self.max_new(params.get("max_new_tokens"), prompt))
        doc = {"generated_text": "".join(t["text"] for t in tokens)}
        if params.get("details"):
            doc["details"] = {"finish_reason": "length", "generated_tokens": len(tokens),
                              "seed": None, "prefill": [], "tokens": tokens}
        return web.json_response(doc)

    async def generate_stream(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        prompt, params = body["inputs"], body.get("parameters") or {}
        if (bad := self._check(prompt)) is not None:
            return bad
        self.requests += 1
        tokens = reply_tokens(self.max_new(params.get("max_new_tokens"), prompt))
        response = await self._sse(request)
        for i, token in enumerate(tokens):
            event = {"index": i + 1, "token": token, "top_tokens": None,
                     "generated_text": None, "details": None}
            if i == len(tokens) - 1:
                event["generated_text"] = "".join(t["text"] for t in tokens)
                event["details"] = {"finish_reason": "length", "generated_tokens": len(tokens),
                                    "seed": None, "input_length": len(tokenize(prompt))}
            await response.write(f"data:{json.dumps(event)}\n\n".encode())
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        return response

    async def openai(self, request: web.Request) -> web.StreamResponse:
        chat = request.path.endswith("/chat/completions")
        body = await request.json()
        if chat:
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        else:
            prompt = body.get("prompt", "")
            if not isinstance(prompt, str):
                return web.json_response({"error": "Input validation error: prompt must be "
                                                   "a string", "error_type": "validation"},
                                         status=422)
        if (bad := self._check(prompt)) is not None:
            return bad
        self.requests += 1
        tokens = reply_tokens(self.max_new(body.get("max_tokens"), prompt))
        usage = {"prompt_tokens": len(tokenize(prompt)), "completion_tokens": len(tokens),
                 "total_tokens": len(tokenize(prompt)) + len(tokens)}
        model, created = self.args.model_id, int(time.time())
        kind = "chat.completion" if chat else "text_completion"
        if not body.get("stream"):
            text = "".join(t["text"] for t in tokens)
            choice = ({"index": 0, "message": {"role": "assistant", "content": text},
                       "logprobs": None, "finish_reason": "length"} if chat else
                      {"index": 0, "text": text, "logprobs": None, "finish_reason": "length"})
            return web.json_response({"id": "", "object": kind, "created": created,
                                      "model": model, "system_fingerprint": VERSION,
                                      "choices": [choice], "usage": usage})
        response = await self._sse(request)
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            finish = "length" if last else None
            choice = ({"index": 0, "delta": {"role": "assistant", "content": token["text"]},
                       "logprobs": None, "finish_reason": finish} if chat else
                      {"index": 0, "text": token["text"], "logprobs": None,
                       "finish_reason": finish})
            chunk = {"id": "", "object": f"{kind}.chunk" if chat else kind,
                     "created": created, "model": model, "system_fingerprint": VERSION,
                     "choices": [choice], "usage": None}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            chunk = {"id": "", "object": f"{kind}.chunk" if chat else kind,
                     "created": created, "model": model, "system_fingerprint": VERSION,
                     "choices": [], "usage": usage}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(tokenize(body["inputs"]))

    async def metrics(self, request: web.Request) -> web.Response:
        text = ("# HELP tgi_request_count Total number of requests\n"
                "# TYPE tgi_request_count counter\n"
                f"tgi_request_count {self.requests}\n")
        return web.Response(text=text, content_type="text/plain")

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([
            web.get("/health", self.health), web.get("/info", self.info),
            web.post("/generate", self.generate),
            web.post("/generate_stream", self.generate_stream),
            web.post("/v1/chat/completions", self.openai),
            web.post("/v1/completions", self.openai),
            web.post("/tokenize", self.tokenize), web.get("/metrics", self.metrics),
        ])
        return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-id", default="fake/model")
    parser.add_argument("--hostname", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-input-tokens", type=int, default=1024)
    parser.add_argument("--max-total-tokens", type=int, default=2048)
    parser.add_argument("--quantize")
    parser.add_argument("--num-shard", type=int)
    parser.add_argument("--dtype")
    args = parser.parse_args()
    if not os.path.isdir(args.model_id):
        raise SystemExit(f"fake TGI: no model folder at {args.model_id}")
    web.run_app(FakeTgi(args).app(), host=args.hostname, port=args.port, print=None)


if __name__ == "__main__":
    main()
