"""kitt-web test helpers: a store with runs and one token per role, an in-process client
(aiohttp's test utilities), and a live `kitt web` process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import kitt
from kitt_web.app import make_app
from kitt_web.config import WebConfig
from kitt_web.state import open_state, tokens
from support import subprocess_env
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


async def login(client, secret: str, next_path: str = "/"):
    """Log in through the form, as a browser does; the response (303 when it worked)."""
    form = await client.get("/login")
    nonce = re.search(r'name="login_csrf" value="([^"]+)"', await form.text())[1]
    return await client.post("/login", data={"token": secret, "login_csrf": nonce,
                                             "next": next_path}, allow_redirects=False)


def csrf_of(html: str) -> str:
    """The CSRF token a page gives its scripts."""
    return re.search(r'<meta name="csrf-token" content="([^"]*)"', html)[1]


def seed(url: str, runs: int = 6) -> Seeded:
    """Runs 1..`runs` (models a/b alternating, run 3 failed) and one token per role."""
    with kitt.open_store(url) as store:
        made = [make_run(i, model="a.gguf" if i % 2 else "b.gguf",
                         status="failed" if i == 3 else "passed") for i in range(1, runs + 1)]
        store.save_runs(made)
        db = open_state(store)
        secrets = {role: tokens.create(db, f"{role}-token", role)[1] for role in tokens.ROLES}
    return Seeded(url, secrets, tuple(run.id for run in made))


class ContractViolation(AssertionError):
    pass


def contract_middleware(checked: list[str]):
    """Validates every /api/v1 response the application gives against the OpenAPI
    document (openapi-core): status, content type, headers and body. A violation fails
    the request's test, naming the endpoint."""
    from openapi_core import OpenAPI
    from openapi_core.contrib.aiohttp import (
        AIOHTTPOpenAPIWebRequest,
        AIOHTTPOpenAPIWebResponse,
    )
    from openapi_core.templating.paths.exceptions import PathNotFound
    from openapi_schema_validator import validate as validate_schema

    from kitt_web.api.openapi import document

    spec = OpenAPI.from_dict(document())

    @web.middleware
    async def check(request: web.Request, handler):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        if request.path.startswith("/api/") and isinstance(response, web.Response):
            body = await request.read()
            try:
                try:
                    spec.validate_response(AIOHTTPOpenAPIWebRequest(request, body=body),
                                           AIOHTTPOpenAPIWebResponse(response))
                except PathNotFound:  # no such route: a 404 or 405 in the one error shape
                    assert response.status in (404, 405), response.status
                    validate_schema(json.loads(response.text),
                                    document()["components"]["schemas"]["Error"])
            except Exception as exc:
                violation = ContractViolation(
                    f"{request.method} {request.path_qs} -> {response.status}: {exc!r} "
                    f"{response.text!r:.500}")
                VIOLATIONS.append(violation)
                raise violation from exc
            checked.append(f"{request.method} {request.path} {response.status}")
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return check


CHECKED: list[str] = []
"""Every response the contract middleware validated in this test session."""
VIOLATIONS: list[ContractViolation] = []
"""Responses outside the contract (tests/web/conftest.py fails the test that saw one)."""


@asynccontextmanager
async def web_client(url: str, *, contract: bool = True, **config: Any
                     ) -> AsyncIterator[TestClient]:
    app = make_app(WebConfig(store_url=url, **config))
    if contract:
        app.middlewares.insert(0, contract_middleware(CHECKED))
    async with TestClient(TestServer(app)) as client:
        yield client


class WebProcess:
    """`kitt web ARGS` in the background, its stderr (announcements and the access log)
    going to a file, so a busy server never blocks on a full pipe."""

    def __init__(self, *args: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._handle = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "kitt", "web", *args],
                                     stdout=subprocess.DEVNULL, stderr=self._handle,
                                     env=subprocess_env(env), start_new_session=True)

    @property
    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, line: str, timeout: float = 60) -> str:
        """Everything said up to and including the first line containing `line`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text
            if line in text:
                return text[:text.index(line) + len(line)]
            if self.proc.poll() is not None:
                pytest.fail(f"kitt web exited {self.proc.returncode}: {self.text[-3000:]}")
            time.sleep(0.05)  # the file has no change notification; the check is the event
        self.proc.kill()
        pytest.fail(f"kitt web never said {line!r}: {self.text[-3000:]}")

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        """Signal it (None: it was already) and wait for its exit: (exit code, all it
        said)."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"kitt web did not stop {timeout}s after {sig}: {self.text[-3000:]}")
        self._handle.close()
        return code, self.text


def start_web(*args: str, env: dict[str, str], log: Path) -> tuple[WebProcess, str]:
    """`kitt web ARGS`, once it says it is ready; it and what it said until then."""
    web_process = WebProcess(*args, env=env, log=log)
    return web_process, web_process.wait_for("kitt web: ready")
