"""Templates: one jinja2 environment (autoescape on for everything), the context every
page gets (the actor, its CSRF token, the navigation), and the error page."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import jinja2
from aiohttp import web

import kitt
from kitt_web import keys
from kitt_web.auth import actor_of

NAV = (("overview", "/", "Overview"), ("runs", "/runs", "Runs"),
       ("compare", "/compare", "Compare"), ("trends", "/trends", "Trends"),
       ("models", "/models", "Models"))
FLEET_NAV = (("agents", "/agents", "Agents"), ("jobs", "/jobs", "Jobs"),
             ("campaigns", "/campaigns", "Campaigns"))
"""Never public (--public-read opens runs, not the fleet)."""
ADMIN_NAV = (("settings", "/settings", "Settings"), ("tokens", "/tokens", "Tokens"))


def setup(app: web.Application) -> None:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kitt_web", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["num"] = _num
    env.filters["epoch"] = _epoch
    env.globals["static"] = lambda name: str(
        app.router["static"].url_for(filename=name))
    app[keys.TEMPLATES] = env


def _when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M")


def _epoch(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def page(request: web.Request, template: str, status: int = 200, **context: Any
         ) -> web.Response:
    env: jinja2.Environment = request.app[keys.TEMPLATES]
    actor = actor_of(request)
    config = request.app[keys.CONFIG]
    nav = (NAV + (FLEET_NAV if actor.allows("viewer") else ())
           + (ADMIN_NAV if actor.allows("admin") else ()))
    html = env.get_template(template).render(
        actor=actor, csrf=actor.csrf or "", nav=nav, path=request.path,
        public_read=config.public_read, kitt_version=kitt.__version__, **context)
    return web.Response(text=html, status=status, content_type="text/html")


def error_page(request: web.Request, error: Any) -> web.Response:
    return page(request, "error.html", status=error.status, error=error)
