"""What this server's KITT has installed: benchmarks, suites (validated), engines (what
they can do on this host) and the host's hardware fingerprint."""

from __future__ import annotations

import functools

from aiohttp import web

import kitt
from kitt_web import keys
from kitt_web.api.params import json_response
from kitt_web.auth import access

routes = web.RouteTableDef()


def _run(request: web.Request, fn):
    # Catalogue calls read plugins and files, not the store; the store threads keep them
    # off the event loop all the same.
    return request.app[keys.THREADS].run(lambda _: fn())


@routes.get("/api/v1/benchmarks")
@access("viewer", public=True)
async def benchmarks(request: web.Request) -> web.Response:
    return json_response({"benchmarks": await _run(request, kitt.benchmark_catalogue)})


@routes.get("/api/v1/suites")
@access("viewer", public=True)
async def suites(request: web.Request) -> web.Response:
    return json_response({"suites": await _run(request, kitt.suite_catalogue)})


@routes.get("/api/v1/engines")
@access("viewer", public=True)
async def engines(request: web.Request) -> web.Response:
    return json_response({"engines": await _run(request, kitt.engine_catalogue)})


@functools.cache
def _fingerprint() -> dict:
    return kitt.unstructure(kitt.take_fingerprint())


@routes.get("/api/v1/hardware")
@access("viewer", public=True)
async def hardware(request: web.Request) -> web.Response:
    """The server's own hardware fingerprint (taken once per server start)."""
    return json_response(await _run(request, _fingerprint))
