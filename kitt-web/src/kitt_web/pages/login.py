"""Logging in with a token (once: the session cookie carries on), and out.

The login form is protected against login CSRF by a double-submit token: a random value
in a short-lived cookie and in the form, which must match. Failed attempts are limited
per client address (429 with Retry-After)."""

from __future__ import annotations

import hmac
import secrets
import time
from urllib.parse import urlsplit

from aiohttp import web

from kitt_web import keys
from kitt_web.auth import (
    access,
    actor_of,
    clear_session_cookie,
    session_cookie,
    set_session_cookie,
)
from kitt_web.errors import ApiError
from kitt_web.pages.render import page
from kitt_web.state import sessions, tokens

routes = web.RouteTableDef()
LOGIN_CSRF_COOKIE = "kitt_login_csrf"


def safe_next(target: str | None) -> str:
    """Only a path on this server: never `//other.host` or `https://...`."""
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or urlsplit(target).netloc:
        return "/"
    return target


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


@routes.get("/login")
@access("open")
async def login_form(request: web.Request) -> web.Response:
    nonce = secrets.token_urlsafe(24)
    response = page(request, "login.html", next=safe_next(request.query.get("next")),
                    login_csrf=nonce, problem=None)
    secure = request.app[keys.CONFIG].secure
    response.set_cookie(LOGIN_CSRF_COOKIE, nonce, path="/login", secure=secure,
                        httponly=True, samesite="Strict", max_age=1800)
    return response


@routes.post("/login")
@access("open")
async def login(request: web.Request) -> web.StreamResponse:
    limiter = request.app[keys.LIMITER]
    address = request.remote or "unknown"
    wait = limiter.retry_after(address)
    if wait is not None:
        raise ApiError(429, "too_many_requests", "too many failed logins from this address",
                       f"wait {int(wait) + 1} s", {"Retry-After": str(int(wait) + 1)})
    form = await request.post()
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = form.get("login_csrf")
    if not nonce or not isinstance(given, str) or not hmac.compare_digest(nonce, given):
        raise ApiError(403, "bad_csrf", "the login form expired or came from elsewhere",
                       "open /login again and retry")
    secret = form.get("token")
    target = safe_next(form.get("next") if isinstance(form.get("next"), str) else None)
    threads = request.app[keys.THREADS]
    token = await threads.run(lambda karr: tokens.find(karr.db, secret)) \
        if isinstance(secret, str) and secret.strip() else None
    if token is None:
        limiter.failed(address)
        response = page(request, "login.html", status=401, next=target, login_csrf=nonce,
                        problem="That token is unknown, expired or revoked.")
        return response
    limiter.succeeded(address)
    config = request.app[keys.CONFIG]
    session, cookie = await threads.run(lambda karr: sessions.open_session(
        karr.db, token, absolute_s=config.session_absolute_s))
    response = see_other(target)
    set_session_cookie(response, config.secure, cookie, max_age=session.expires_at - time.time())
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@routes.post("/logout")
@access("viewer")
async def logout(request: web.Request) -> web.StreamResponse:
    config = request.app[keys.CONFIG]
    cookie = request.cookies.get(session_cookie(config.secure))
    if cookie and actor_of(request).via == "session":
        await request.app[keys.THREADS].run(lambda karr: sessions.close(karr.db, cookie))
    response = see_other("/login")
    clear_session_cookie(response, config.secure)
    return response
