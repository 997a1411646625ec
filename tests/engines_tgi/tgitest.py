"""Helpers for the TGI wire tests: the fake server (fake_tgi.py) as a launcher binary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FAKE = HERE / "fake_tgi.py"


def fake_launcher(directory: Path) -> Path:
    """An executable `text-generation-launcher` that runs the fake TGI server."""
    path = directory / "text-generation-launcher"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def hf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's Hugging Face folder (TGI serves safetensors folders)."""
    from kitt.tinymodel import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny")).hf_dir


@pytest.fixture
def kitt_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "kitt-home"
    monkeypatch.setenv("KITT_HOME", str(home))
    return {"KITT_HOME": str(home)}
