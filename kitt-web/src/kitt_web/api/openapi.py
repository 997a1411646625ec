"""The OpenAPI 3.1 document, the API's contract: `openapi.yaml` beside this module
(YAML for the people who edit it), served as JSON. Tests validate every response they
see against it."""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

from kitt_web.api.params import json_response
from kitt_web.auth import access

routes = web.RouteTableDef()
SOURCE = Path(__file__).with_name("openapi.yaml")


@functools.cache
def document() -> dict:
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(SOURCE.read_text(encoding="utf-8"))
    for parameter in _query_parameters(doc):
        # An empty value means "not given" (what a blank form field sends). Strings admit
        # it already; choices say so here rather than beside every one in the YAML.
        # Numbers do not: an empty `limit` is a 400.
        schema = parameter["schema"]
        if "enum" in schema and "" not in schema["enum"]:
            schema["enum"] = [*schema["enum"], ""]
    return doc


def _query_parameters(doc: dict):
    yield from (p for p in doc["components"]["parameters"].values() if p["in"] == "query")
    for item in doc["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                yield from (p for p in operation.get("parameters", ())
                            if "$ref" not in p and p["in"] == "query")


@routes.get("/api/v1/openapi.json")
@access("viewer", public=True)
async def openapi(request: web.Request) -> web.Response:
    return json_response(document())
