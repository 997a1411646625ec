"""Stand-ins for the engines that cannot be installed here (TGI, Ollama): local servers
that follow their documented wire formats (engines_tgi/fake_tgi.py,
engines_ollama/fake_ollama.py), as the executables KITT's engine plugins start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support import TESTS

FAKE_TGI = TESTS / "engines_tgi" / "fake_tgi.py"
FAKE_OLLAMA = TESTS / "engines_ollama" / "fake_ollama.py"


def fake_launcher(directory: Path) -> Path:
    """An executable `text-generation-launcher` that runs the fake TGI server."""
    path = directory / "text-generation-launcher"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_TGI}" "$@"\n')
    path.chmod(0o755)
    return path


def fake_ollama_binary(directory: Path) -> Path:
    """An executable `ollama` whose `serve` runs the fake server."""
    path = directory / "ollama"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_OLLAMA}" "$@"\n')
    path.chmod(0o755)
    return path


def start_service(port: int, log: Path, env: dict[str, str] | None = None
                  ) -> subprocess.Popen:
    """A fake Ollama that KITT did not start (a system service), ready to answer."""
    proc = subprocess.Popen([sys.executable, str(FAKE_OLLAMA), "serve"],
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
