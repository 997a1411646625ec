"""Fixtures of the TGI tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def hf_model(tiny_model) -> Path:
    """The tiny model's Hugging Face folder (TGI serves safetensors folders)."""
    return tiny_model.hf_dir
