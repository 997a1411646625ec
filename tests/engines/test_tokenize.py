"""`kitt.EngineTokenizer`, the one client of every engine's tokenize endpoint, driven by
what each engine plugin declares (`Engine.tokenize_api`), against a server that answers
in each engine's documented format."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kitt import EngineTokenizer, TokenizerError
from kitt_bench_perf.workload import LengthDist, synthetic_requests
from kitt_engine_llamacpp import LlamaCppPython, LlamaServer
from kitt_engine_tgi import Tgi
from kitt_engine_vllm import Vllm

BOS = 1


def _encode(text: str) -> list[int]:
    return [ord(c) for c in text]


class Handler(BaseHTTPRequestHandler):
    """One engine's tokenize API, by `flavour`: what its server answers."""

    flavour = "vllm"
    bodies: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append({"path": self.path, **body})
        reply = self.answer(body)
        if reply is None:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"detail": "Not Found"}')
            return
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def answer(self, body: dict):
        flavour, path = self.flavour, self.path
        if flavour == "vllm" and path == "/tokenize":
            return {"tokens": _encode(body["prompt"]), "count": len(body["prompt"])}
        if flavour == "vllm" and path == "/detokenize":
            return {"prompt": "".join(map(chr, body["tokens"]))}
        if flavour == "llamacpp" and path == "/tokenize":
            return {"tokens": _encode(body["content"])}
        if flavour == "llamacpp" and path == "/detokenize":
            return {"content": "".join(map(chr, body["tokens"]))}
        if flavour == "llamacpp-python" and path == "/extras/tokenize":
            return {"tokens": [BOS, *_encode(body["input"])]}  # always adds BOS
        if flavour == "llamacpp-python" and path == "/extras/detokenize":
            return {"text": "".join(map(chr, body["tokens"]))}
        if flavour == "tgi" and path == "/tokenize":
            return [{"id": ord(c), "text": c, "start": i, "stop": i + 1}
                    for i, c in enumerate(body["inputs"])]
        return None

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.bodies = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("engine", [Vllm(), LlamaServer(), LlamaCppPython()],
                         ids=lambda e: e.name)
def test_encode_and_decode_with_each_engines_declared_api(server, engine):
    Handler.flavour = engine.name
    tok = EngineTokenizer(server, engine.tokenize_api, model="m")
    assert tok.encode("héllo") == _encode("héllo")  # llama-cpp-python's BOS stripped
    assert tok.decode([104, 105]) == "hi"
    specs = synthetic_requests(tok, 3, LengthDist(20), LengthDist(4))
    assert [s.input_tokens for s in specs] == [20, 20, 20]
    sent = [b for b in Handler.bodies if "tokenize" in b["path"] and "detok" not in b["path"]]
    if engine.name == "vllm":  # no special tokens, and the model named
        assert all(b["add_special_tokens"] is False and b["model"] == "m" for b in sent)
    if engine.name == "llamacpp":
        assert all(b["add_special"] is False and "model" not in b for b in sent)


def test_tgi_tokenizes_but_cannot_decode(server):
    Handler.flavour = "tgi"
    tok = EngineTokenizer(server, Tgi.tokenize_api, model="m")
    assert tok.encode("abc") == _encode("abc")
    assert not tok.can_decode
    with pytest.raises(TokenizerError, match="no detokenize endpoint"):
        tok.decode([97])


def test_errors_name_the_endpoint_and_the_answer(server):
    Handler.flavour = "vllm"
    tok = EngineTokenizer(server + "/nope", Vllm.tokenize_api)
    with pytest.raises(TokenizerError, match="/nope/tokenize: HTTP 404"):
        tok.encode("x")
    Handler.flavour = "ollama"  # answers 404 everywhere
    with pytest.raises(TokenizerError, match="HTTP 404"):
        EngineTokenizer(server, Vllm.tokenize_api).encode("x")
