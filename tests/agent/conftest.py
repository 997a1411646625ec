"""Fixtures of the agent tests: a fleet (server and agents, real processes) over the
tiny model, with llama-server as the engine."""

from __future__ import annotations

import shutil

import pytest
from support.agents import Fleet, wait_quiet
from support.engines import need_llama_server


@pytest.fixture
def models(tiny_model, tmp_path):
    folder = tmp_path / "model-source"
    folder.mkdir()
    shutil.copy(tiny_model.gguf_path, folder / "kitt-tiny.gguf")
    return folder


@pytest.fixture
def fleet(tmp_path, models):
    need_llama_server()
    made = Fleet(tmp_path, models)
    yield made
    made.close()
    wait_quiet(tmp_path)
