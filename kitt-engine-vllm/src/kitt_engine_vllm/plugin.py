"""Entry point module (group `kitt`, name `vllm`)."""

from __future__ import annotations

import kitt
from kitt_engine_vllm.engine import Vllm


@kitt.hookimpl
def register_engines(register):
    register(Vllm())
