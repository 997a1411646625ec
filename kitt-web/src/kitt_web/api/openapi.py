"""The OpenAPI 3.1 document: the API's contract (tests validate every response against
it). Written as data in `openapi.json` beside this module."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from aiohttp import web

from kitt_web.api.params import json_response
from kitt_web.auth import access

routes = web.RouteTableDef()
DOCUMENT = Path(__file__).with_name("openapi.json")


@functools.cache
def document() -> dict:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


@routes.get("/api/v1/openapi.json")
@access("viewer", public=True)
async def openapi(request: web.Request) -> web.Response:
    return json_response(document())
