"""kitt-web test helpers: a store with runs and one token per role, an in-process client
(aiohttp's test utilities), and a live `kitt web` process."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
from aiohttp.test_utils import TestClient, TestServer

import kitt
from kitt_web.app import make_app
from kitt_web.config import WebConfig
from kitt_web.state import open_state, tokens
from support import start_kitt, wait_for_line
from support.stores import make_run

TOKEN = re.compile(r"kitt_[A-Za-z0-9_-]{43}")


@attrs.frozen
class Seeded:
    url: str
    secrets: dict[str, str]
    """role -> token secret."""
    run_ids: tuple[str, ...]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}"}


def seed(url: str, runs: int = 6) -> Seeded:
    """Runs 1..`runs` (models a/b alternating, run 3 failed) and one token per role."""
    with kitt.open_store(url) as store:
        made = [make_run(i, model="a.gguf" if i % 2 else "b.gguf",
                         status="failed" if i == 3 else "passed") for i in range(1, runs + 1)]
        store.save_runs(made)
        db = open_state(store)
        secrets = {role: tokens.create(db, f"{role}-token", role)[1] for role in tokens.ROLES}
    return Seeded(url, secrets, tuple(run.id for run in made))


@asynccontextmanager
async def web_client(url: str, **config: Any) -> AsyncIterator[TestClient]:
    app = make_app(WebConfig(store_url=url, **config))
    async with TestClient(TestServer(app)) as client:
        yield client


def start_web(*args: str, env: dict[str, str], ready: str = "kitt web: serving"
              ) -> tuple[subprocess.Popen, list[str]]:
    """`kitt web ARGS` as a process; returns it and the lines it printed until ready."""
    proc = start_kitt("web", *args, env=env)
    wait_for_line(proc, ready, timeout=60, stream="stderr")
    return proc, proc.seen_lines
