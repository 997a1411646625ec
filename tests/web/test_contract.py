"""The OpenAPI document is the contract: valid OpenAPI 3.1, it describes every /api/v1
route the application serves with the role the route demands, and the checker the other
tests run through does reject a response outside it."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from support.web import VIOLATIONS, contract_middleware

from kitt_web.api.openapi import document
from kitt_web.app import make_app
from kitt_web.auth import Rule
from kitt_web.config import WebConfig


def served_api_routes() -> dict[tuple[str, str], Rule]:
    app = make_app(WebConfig(store_url="sqlite:///unused.db"))
    found = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and path.startswith("/api/") and route.method != "HEAD":
            found[(route.method.lower(), path)] = getattr(route.handler, "kitt_rule", Rule())
    return found


def test_the_document_is_valid_openapi_3_1():
    doc = document()
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_every_route_is_documented_with_its_role():
    doc = document()
    documented = {(method, path): operation for path, item in doc["paths"].items()
                  for method, operation in item.items() if method != "parameters"}
    served = served_api_routes()
    assert set(documented) == set(served)
    for key, rule in served.items():
        operation = documented[key]
        assert operation["x-kitt-role"] == rule.role, key
        assert operation.get("x-kitt-public", False) == rule.public, key
        assert (operation.get("security") == []) == (rule.role == "open"), key
        if rule.role != "open":
            assert "401" in operation["responses"], key
        if rule.role in ("operator", "admin"):
            assert "403" in operation["responses"], key


async def test_the_checker_rejects_a_response_outside_the_contract():
    async def health(request):  # `status` must be "ok" and nothing else is allowed
        return web.json_response({"status": "fine", "extra": 1})

    app = web.Application(middlewares=[contract_middleware([])])
    app.router.add_get("/api/v1/health", health)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/v1/health")
    assert response.status == 500
    assert VIOLATIONS and "GET /api/v1/health" in str(VIOLATIONS[-1])
    VIOLATIONS.clear()  # seen on purpose
