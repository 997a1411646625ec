"""Helpers for the Ollama wire tests: the fake server (fake_ollama.py) as `ollama`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FAKE = HERE / "fake_ollama.py"


def fake_ollama_binary(directory: Path) -> Path:
    """An executable `ollama` whose `serve` runs the fake server."""
    path = directory / "ollama"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    path.chmod(0o755)
    return path


def start_service(port: int, log: Path, env: dict[str, str] | None = None
                  ) -> subprocess.Popen:
    """A fake Ollama that KITT did not start (a system service), ready to answer."""
    proc = subprocess.Popen([sys.executable, str(FAKE), "serve"],
                            env={**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}",
                                 "FAKE_OLLAMA_LOG": str(log), **(env or {})})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the fake Ollama service did not start")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kitt.tinymodel import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny")).gguf_path


@pytest.fixture
def kitt_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "kitt-home"
    monkeypatch.setenv("KITT_HOME", str(home))
    return {"KITT_HOME": str(home)}
