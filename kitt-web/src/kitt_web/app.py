"""The application factory: middlewares (errors, security headers, auth), routes from
the API and the pages, and the store threads' lifecycle in `cleanup_ctx`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from kitt_web import keys
from kitt_web.auth import LoginLimiter, actor_of, auth_middleware
from kitt_web.config import WebConfig
from kitt_web.dispatch import fleet_ctx
from kitt_web.errors import errors_middleware
from kitt_web.influx import influx_ctx
from kitt_web.metrics import EXPORTER, Exporter, metrics_middleware
from kitt_web.metrics import routes as metrics_routes
from kitt_web.storethreads import StoreThreads

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
"""Everything from KITT itself: no inline script or style, no other host."""


@web.middleware
async def headers_middleware(request: web.Request, handler) -> web.StreamResponse:
    response = await handler(request)
    if response.prepared:  # streamed: headers went with prepare() (see api.export)
        return response
    apply_headers(request, response)
    return response


def apply_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Not "no-referrer": with it, browsers send `Origin: null` on form posts, and the
    # same-origin check (auth.same_origin) could not tell KITT's own pages from others.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")  # pages and data: never cached
    elif "v" in request.query:  # the URL names the content's hash: it never changes
        headers.setdefault("Cache-Control", "public, max-age=31536000, immutable")
    else:
        headers.setdefault("Cache-Control", "no-cache")
    if request.app[keys.CONFIG].secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


class AccessLogger(AbstractAccessLogger):
    """One JSON object per request on the `kitt.web.access` logger. The query string is
    logged (it holds filters; credentials never travel in URLs); headers are not."""

    def log(self, request, response, time_taken: float) -> None:
        actor = actor_of(request)
        self.logger.info(json.dumps({
            "ts": round(time.time(), 3), "remote": request.remote, "method": request.method,
            "path": request.path_qs, "status": response.status,
            "bytes": response.body_length, "ms": round(time_taken * 1000, 2),
            "actor": actor.token_id or "anonymous",
        }, ensure_ascii=False))


def make_app(config: WebConfig) -> web.Application:
    from kitt_web import api, pages

    app = web.Application(
        # metrics first: it times the whole answer and sees the status the client got.
        middlewares=[metrics_middleware, headers_middleware, errors_middleware,
                     auth_middleware],
        client_max_size=config.max_body)
    app[keys.CONFIG] = config
    app[keys.LIMITER] = LoginLimiter(config.login_attempts, config.login_window_s)
    app[EXPORTER] = Exporter()
    app.cleanup_ctx.append(_store_threads)
    app.cleanup_ctx.append(fleet_ctx)  # after the threads: the reaper uses them
    app.cleanup_ctx.append(influx_ctx)
    api.setup(app)
    pages.setup(app)
    app.router.add_routes(metrics_routes)
    return app


async def _store_threads(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    threads = StoreThreads(config.store_url, config.store_threads)
    app[keys.THREADS] = threads
    try:
        yield
    finally:
        threads.close()  # after in-flight handlers finished: nothing half-written


def access_logger() -> logging.Logger:
    return stderr_logger("kitt.web.access")


def stderr_logger(name: str) -> logging.Logger:
    """`name`'s records, INFO and up, as bare lines on stderr: the access log, and the
    server's own events (`kitt.web`: the reaper, InfluxDB forwarding)."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
