"""Entry point module (group `kitt`, name `tgi`)."""

from __future__ import annotations

import kitt
from kitt_engine_tgi.engine import Tgi


@kitt.hookimpl
def register_engines(register):
    register(Tgi())
