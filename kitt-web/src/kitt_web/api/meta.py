"""`health` (always open) and `version`."""

from __future__ import annotations

from aiohttp import web

import kitt
import kitt_web
from kitt_web import keys
from kitt_web.api.params import json_response
from kitt_web.auth import access

API_VERSION = "1.0"
routes = web.RouteTableDef()


@routes.get("/api/v1/health")
@access("open")
async def health(request: web.Request) -> web.Response:
    """200 while the server and its store answer; 503 naming the store's problem."""
    def ping(karr):
        return karr.store.count_runs(kitt.RunFilter(ids=()))

    await request.app[keys.THREADS].run(ping)  # StoreUnavailable -> 503 by the middleware
    return json_response({"status": "ok"})


@routes.get("/api/v1/version")
@access("viewer", public=True)
async def version(request: web.Request) -> web.Response:
    return json_response({
        "kitt": kitt.__version__, "kitt_web": kitt_web.__version__, "api": API_VERSION,
        "plugins": await request.app[keys.THREADS].run(lambda _: kitt.plugin_catalogue()),
    })
