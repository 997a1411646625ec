"""`kitt engines conformance` against real servers (llama-server, llama-cpp-python; vLLM in
tests/engines_vllm) and the local TGI/Ollama stand-ins, plus the choices KITT derives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import free_port, require, run_kitt

from kitt._engines.conformance import Capabilities, Check, check

TESTS = Path(__file__).resolve().parents[1]


def _serve(argv: list[str], port: int, ready: str, env: dict[str, str] | None = None):
    """Start a server and wait until `ready` answers 200 (a model loaded)."""
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=2).close()
            return proc
        except OSError:  # refused, or HTTPError 503 while loading
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    pytest.fail(f"{argv[0]} did not become ready")


@pytest.fixture(scope="module")
def fake_tgi(tiny_model):
    port = free_port()
    proc = _serve([sys.executable, str(TESTS / "engines_tgi" / "fake_tgi.py"),
                   "--model-id", str(tiny_model.hf_dir), "--port", str(port)], port, "/health")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def fake_ollama():
    port = free_port()
    proc = _serve([sys.executable, str(TESTS / "engines_ollama" / "fake_ollama.py"),
                   "serve"], port, "/api/tags", {"OLLAMA_HOST": f"127.0.0.1:{port}",
                                    "FAKE_OLLAMA_PULLABLE": "tiny:1b"})
    url = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(
        f"{url}/api/pull", data=b'{"model": "tiny:1b", "stream": false}'), timeout=10).close()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def statuses(caps: Capabilities) -> dict[str, str]:
    return {c.name: c.status for c in caps.checks}


def test_tgi_stand_in(fake_tgi, tiny_model):
    caps = check(fake_tgi, engine="tgi")
    assert caps.model == str(tiny_model.hf_dir)  # from /info
    assert statuses(caps) == {
        "health": "yes", "completions": "yes", "chat": "yes", "streaming": "yes",
        "usage_in_stream": "yes", "prompt_logprobs": "no", "tokenize": "yes",
        "metrics": "yes", "native_stream": "yes"}
    assert caps.scoring_mode == "generate" and caps.token_counting == "usage"
    assert caps.usable


def test_ollama_stand_in(fake_ollama):
    caps = check(fake_ollama, engine="ollama")
    assert caps.model == "tiny:1b"
    assert statuses(caps) == {
        "health": "yes", "completions": "yes", "chat": "yes", "streaming": "yes",
        "usage_in_stream": "yes", "prompt_logprobs": "no", "tokenize": "no",
        "metrics": "n/a", "native_stream": "yes"}
    assert "server timings" in caps.get("native_stream").detail
    assert caps.usable and caps.token_counting == "usage"


def test_flavour_without_a_plugin(fake_ollama, monkeypatch):
    # `-e ollama` works even where kitt-engine-ollama is not installed.
    monkeypatch.setattr("kitt.plugins.engines", lambda: {})
    caps = check(fake_ollama, engine="ollama")
    assert caps.flavour == "ollama" and caps.has("native_stream")


def test_nothing_listening():
    caps = check(f"http://127.0.0.1:{free_port()}", timeout=5)
    assert not caps.usable and caps.get("health").status == "no"
    assert all(c.status == "no" for c in caps.checks)


def test_derived_modes():
    def caps(**status: str) -> Capabilities:
        return Capabilities("http://x", "openai", "m",
                            tuple(Check(n, s) for n, s in status.items()))

    assert caps(prompt_logprobs="yes").scoring_mode == "loglikelihood"
    assert caps(prompt_logprobs="no").scoring_mode == "generate"
    assert caps(usage_in_stream="yes", tokenize="yes").token_counting == "usage"
    assert caps(usage_in_stream="no", tokenize="yes").token_counting == "tokenize"
    assert caps(usage_in_stream="no", tokenize="no").token_counting == "chunks"
    assert caps(health="yes", chat="yes", streaming="yes").usable
    assert not caps(health="yes", chat="yes", streaming="no").usable


def test_cli_table_json_and_exit_codes(fake_tgi):
    result = run_kitt("engines", "conformance", "--url", fake_tgi, "-e", "tgi")
    assert result.returncode == 0, result.stderr
    assert "native_stream" in result.stdout and "token counting: usage" in result.stdout
    result = run_kitt("engines", "conformance", "--url", fake_tgi, "-e", "tgi", "--json")
    doc = json.loads(result.stdout)
    assert doc["usable"] and doc["checks"]["tokenize"]["status"] == "yes"
    result = run_kitt("engines", "conformance", "--url", f"http://127.0.0.1:{free_port()}",
                      "--timeout", "5")
    assert result.returncode == 1 and "usable for benchmarks: no" in result.stdout
    result = run_kitt("engines", "conformance", "--url", "localhost:8000")
    assert result.returncode == 2 and "bad URL" in result.stderr


# -- real servers ---------------------------------------------------------------------------

def _llama_server() -> Path | None:
    try:
        from kitt_engine_llamacpp import LlamaServer
    except ImportError:
        return None
    return LlamaServer().find_native_binary({})


@pytest.mark.engine
def test_llama_server(tiny_model):
    binary = _llama_server()
    require("llama-server", binary is not None, "llama-server is not installed")
    port = free_port()
    proc = _serve([str(binary), "--model", str(tiny_model.gguf_path), "--port", str(port),
                   "--metrics", "--alias", "kitt-tiny", "--threads", "2"], port, "/health")
    try:
        caps = check(f"http://127.0.0.1:{port}", engine="llamacpp", timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert caps.model == "kitt-tiny"
    # llama-server: usage in streams and /tokenize, but no prompt logprobs.
    assert statuses(caps) == {
        "health": "yes", "completions": "yes", "chat": "yes", "streaming": "yes",
        "usage_in_stream": "yes", "prompt_logprobs": "no", "tokenize": "yes",
        "metrics": "yes", "native_stream": "n/a"}
    assert caps.scoring_mode == "generate" and caps.token_counting == "usage"


@pytest.mark.engine
def test_llama_cpp_python(tiny_model):
    try:
        from kitt_engine_llamacpp import LlamaCppPython

        available = LlamaCppPython().find_native_binary({}) is not None
    except ImportError:
        available = False
    require("llama-cpp-python", available, "llama-cpp-python[server] is not installed")
    port = free_port()
    proc = _serve([sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_model.gguf_path),
                   "--port", str(port), "--n_threads", "2"], port, "/v1/models")
    try:
        # Its health is /v1/models (the engine plugin says so); nothing at /health.
        caps = check(f"http://127.0.0.1:{port}", engine="llamacpp-python", timeout=60)
        plain = check(f"http://127.0.0.1:{port}", timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # llama-cpp-python: prompt logprobs, no usage in streams; it tokenizes at
    # /extras/tokenize, as its engine plugin declares.
    assert statuses(caps) == {
        "health": "yes", "completions": "yes", "chat": "yes", "streaming": "yes",
        "usage_in_stream": "no", "prompt_logprobs": "yes", "tokenize": "yes",
        "metrics": "n/a", "native_stream": "n/a"}
    assert "/extras/tokenize" in caps.get("tokenize").detail
    assert caps.scoring_mode == "loglikelihood" and caps.token_counting == "tokenize"
    assert plain.get("health").ok  # falls back to /v1/models without -e
    # Without -e, the tokenize endpoints of every installed openai engine are tried.
    assert plain.get("tokenize").ok and "as llamacpp-python has it" in plain.get(
        "tokenize").detail
