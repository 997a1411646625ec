"""One authentication scheme for pages, API and event streams.

A request's actor comes from `Authorization: Bearer <token>` or from the session cookie a
login set; anything else is anonymous. Every route declares what it needs with `@access`
(undeclared routes need admin: a forgotten declaration fails closed):

    open      anyone: health, the login page, static assets
    viewer    read; with `--public-read`, anonymous readers too where `public=True`
    operator  also launches tests and campaigns
    admin     also settings, tokens and agents
    agent     the agent protocol: only an agent's own token, for its own id in the path

A session's state-changing requests carry its CSRF token (`X-CSRF-Token` header, or the
`csrf_token` form field) and, when the browser sends one, a same-origin `Origin`.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from kitt_web import keys
from kitt_web.errors import ApiError, error_response, is_api
from kitt_web.state import sessions, tokens

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LEVELS = ("open", *tokens.ROLES, "agent")


@attrs.frozen
class Rule:
    role: str = "admin"
    public: bool = False


@attrs.frozen
class Actor:
    role: str | None
    """None: anonymous."""
    name: str = "anonymous"
    token_id: str | None = None
    via: str = "anonymous"  # bearer | session | anonymous
    csrf: str | None = None

    def allows(self, role: str) -> bool:
        if role == "open":
            return True
        if role == "agent" or self.role not in tokens.ROLES:
            return False  # agents and people never share routes
        return tokens.ROLES.index(self.role) >= tokens.ROLES.index(role)


ANONYMOUS = Actor(None)


def access(role: str, *, public: bool = False) -> Callable:
    """Declare what a handler needs (see the module's docstring)."""
    if role not in LEVELS:
        raise ValueError(role)

    def mark(handler: Callable) -> Callable:
        handler.kitt_rule = Rule(role, public)
        return handler

    return mark


def rule_of(request: web.Request) -> Rule:
    route = request.match_info.route
    if isinstance(getattr(route, "resource", None), web.StaticResource):
        return Rule("open")  # the dashboard's own scripts and styles
    handler: Any = request.match_info.handler
    rule = getattr(handler, "kitt_rule", None)
    if rule is None and getattr(request.match_info, "http_exception", None) is not None:
        return Rule("open")  # no route: let the 404/405 through, it reveals nothing
    return rule or Rule()


def session_cookie(secure: bool) -> str:
    # __Host-: the browser only keeps it from a secure origin, for the whole host, with
    # no Domain; nothing on a sibling subdomain can set or shadow it.
    return "__Host-kitt_session" if secure else "kitt_session"


class LoginLimiter:
    """Failed logins per client address in a sliding window; more are refused (429).
    It remembers at most MAX_ADDRESSES addresses: past that, the least recent go first."""

    MAX_ADDRESSES = 10_000

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts, self.window_s = attempts, window_s
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        found = self.failures.setdefault(address, deque())
        while found and found[0] <= now - self.window_s:
            found.popleft()
        return found

    def retry_after(self, address: str, now: float | None = None) -> float | None:
        """Seconds until `address` may try again, or None when it may now."""
        now = time.monotonic() if now is None else now
        recent = self._recent(address, now)
        if len(recent) < self.attempts:
            if not recent:
                self.failures.pop(address, None)
            return None
        return recent[0] + self.window_s - now

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(address, now).append(now)
        if len(self.failures) > self.MAX_ADDRESSES:  # a spray of addresses: bound memory
            for key in [k for k in self.failures if not self._recent(k, now)]:
                del self.failures[key]
            by_age = sorted(self.failures, key=lambda k: self.failures[k][-1])
            for key in by_age[:len(by_age) - self.MAX_ADDRESSES // 2]:
                del self.failures[key]

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)


def unauthorized(request: web.Request, message: str, hint: str) -> Exception:
    if is_api(request) or request.headers.get("Accept", "").startswith("application/json"):
        return ApiError(401, "unauthorized", message, hint,
                        {"WWW-Authenticate": 'Bearer realm="kitt"'})
    from urllib.parse import quote

    target = request.path_qs if request.method == "GET" else "/"
    return web.HTTPSeeOther(f"/login?next={quote(target, safe='')}")


def bearer_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "unauthorized", "the Authorization header is not a Bearer token",
                       "send `Authorization: Bearer <token>`",
                       {"WWW-Authenticate": 'Bearer realm="kitt"'})
    return value.strip()


def explain_bad_token(token: tokens.Token | None) -> tuple[str, str]:
    if token is None:
        return "unknown token", "check the token, or ask an admin for one (kitt web token create)"
    state = token.state()
    return (f"token {token.id} is {state}",
            "ask an admin for a new token (kitt web token create)")


def same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


async def csrf_given(request: web.Request) -> str | None:
    header = request.headers.get("X-CSRF-Token")
    if header is not None:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


def actor_of(request: web.Request) -> Actor:
    return request.get(keys.ACTOR, ANONYMOUS)


async def identify(request: web.Request) -> Actor:
    """Who is asking: a Bearer token wins over a session cookie; a bad token is a 401
    (never silently anonymous)."""
    threads = request.app[keys.THREADS]
    secret = bearer_of(request)
    if secret is not None:
        token = await threads.run(lambda karr: tokens.by_secret(karr.db, secret))
        if token is None or token.state() != "active":
            message, hint = explain_bad_token(token)
            raise ApiError(401, "unauthorized", message, hint,
                           {"WWW-Authenticate": 'Bearer realm="kitt", error="invalid_token"'})
        await threads.run(lambda karr: tokens.touch(karr.db, token.id))
        return Actor(token.role, token.name, token.id, "bearer")
    config = request.app[keys.CONFIG]
    cookie = request.cookies.get(session_cookie(config.secure))
    if cookie:
        found = await threads.run(lambda karr: sessions.find(
            karr.db, cookie, idle_s=config.session_idle_s))
        if found is not None:
            return Actor(found.token.role, found.token.name, found.token.id, "session",
                         found.csrf)
        request[keys.STALE_SESSION] = True  # the response clears the cookie
    return ANONYMOUS


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await _authorized(request, handler)
    except (ApiError, web.HTTPRedirection) as refusal:
        if not request.get(keys.STALE_SESSION):
            raise
        response = (error_response(request, refusal) if isinstance(refusal, ApiError)
                    else web.Response(status=refusal.status, headers=refusal.headers))
    if request.get(keys.STALE_SESSION) and not response.prepared:
        clear_session_cookie(response, request.app[keys.CONFIG].secure)
    return response


async def identify_agent(request: web.Request) -> Actor:
    """The agent calling an agent route: its token must be the one of the agent the path
    names. An unknown agent is a 404 (the server lost it: re-enroll); a wrong, revoked or
    removed one a 401."""
    from kitt_web.state import agents

    agent_id, secret = request.match_info["agent_id"], bearer_of(request)
    try:
        agent, stale = await request.app[keys.THREADS].run(
            lambda karr: agents.authenticate(karr.db, agent_id, secret))
    except agents.Refused as refused:
        status = 404 if refused.code == "unknown_agent" else 401
        raise ApiError(status, refused.code, refused.message, refused.hint,
                       {} if status == 404 else
                       {"WWW-Authenticate": 'Bearer realm="kitt", error="invalid_token"'}
                       ) from None
    request[keys.AGENT] = (agent, stale)
    return Actor("agent", agent.name, agent.id, "agent")


async def _authorized(request: web.Request, handler) -> web.StreamResponse:
    rule = rule_of(request)
    if rule.role == "agent":
        request[keys.ACTOR] = await identify_agent(request)
        return await handler(request)
    actor = await identify(request)
    request[keys.ACTOR] = actor
    config = request.app[keys.CONFIG]
    if actor.role is None and rule.role != "open":
        readable = (config.public_read and rule.public and rule.role == "viewer"
                    and request.method in SAFE_METHODS)
        if not readable:
            raise unauthorized(request, "this needs a token",
                               "send `Authorization: Bearer <token>`, or log in at /login")
    elif not actor.allows(rule.role):
        raise ApiError(403, "forbidden",
                       f"this needs the {rule.role} role; token {actor.token_id} is "
                       f"{actor.role}", "ask an admin for a token with that role")
    if actor.via == "session" and request.method not in SAFE_METHODS:
        if not same_origin(request):
            raise ApiError(403, "bad_origin", "the request came from another origin",
                           "state changes are only accepted from KITT's own pages")
        if not csrf_matches(actor.csrf or "", await csrf_given(request)):
            raise ApiError(403, "bad_csrf", "missing or wrong CSRF token",
                           "reload the page and try again")
    return await handler(request)


def set_session_cookie(response: web.StreamResponse, secure: bool, secret: str,
                       max_age: float) -> None:
    response.set_cookie(session_cookie(secure), secret, path="/", secure=secure,
                        httponly=True, samesite="Strict", max_age=int(max_age))


def clear_session_cookie(response: web.StreamResponse, secure: bool) -> None:
    response.set_cookie(session_cookie(secure), "", path="/", secure=secure, httponly=True,
                        samesite="Strict", max_age=0,
                        expires="Thu, 01 Jan 1970 00:00:00 GMT")
