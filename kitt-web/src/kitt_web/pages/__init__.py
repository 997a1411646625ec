"""The dashboard: server-rendered pages (jinja2, autoescaped), htmx for partial updates
and uPlot for charts, both vendored under static/ (no CDN: it works air-gapped, under a
CSP that allows only this server). Every page that shows data has a JSON twin in /api/v1
with the same query string."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from kitt_web.pages import fleet, login, render, views

STATIC = Path(__file__).parent.parent / "static"


def setup(app: web.Application) -> None:
    render.setup(app)
    app.router.add_routes(login.routes)
    app.router.add_routes(views.routes)
    app.router.add_routes(fleet.routes)
    app.router.add_static("/static/", STATIC, name="static", append_version=True)
