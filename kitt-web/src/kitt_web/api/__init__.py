"""/api/v1: JSON over KARR and the installed plugins. Each module holds one resource's
routes; `openapi.py` the document that is their contract."""

from __future__ import annotations

from aiohttp import web

from kitt_web.api import (
    admin,
    agent_protocol,
    agents,
    campaigns,
    catalogue,
    jobs,
    meta,
    models,
    openapi,
    runs,
)

PREFIX = "/api/v1"


def setup(app: web.Application) -> None:
    from kitt_web import install

    app.router.add_routes(install.routes)
    for module in (meta, runs, catalogue, models, admin, agents, jobs, campaigns,
                   agent_protocol, openapi):
        app.router.add_routes(module.routes)
