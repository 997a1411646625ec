"""Entry point module (group `kitt`, name `llamacpp`)."""

from __future__ import annotations

import kitt
from kitt_engine_llamacpp.llama_server import LlamaServer
from kitt_engine_llamacpp.python_server import LlamaCppPython


@kitt.hookimpl
def register_engines(register):
    register(LlamaServer())
    register(LlamaCppPython())
