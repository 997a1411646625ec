"""Entry point module (group `kitt`, name `ollama`)."""

from __future__ import annotations

import kitt
from kitt_engine_ollama.engine import Ollama


@kitt.hookimpl
def register_engines(register):
    register(Ollama())
