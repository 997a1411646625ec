"""Fixtures of the Ollama tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model) -> Path:
    return tiny_model.gguf_path
