"""Admin only: settings (saved > environment > default, each with its source) and
tokens (create: the secret is in that one response; list; revoke)."""

from __future__ import annotations

import attrs
from aiohttp import web

from kitt_web import keys
from kitt_web.api.params import json_body, json_response
from kitt_web.auth import access, actor_of
from kitt_web.errors import bad_request, not_found
from kitt_web.state import settings, tokens

routes = web.RouteTableDef()


def settings_dict(values: dict) -> dict:
    return {"settings": {key: attrs.asdict(value) for key, value in values.items()}}


@routes.get("/api/v1/settings")
@access("admin")
async def get_settings(request: web.Request) -> web.Response:
    values = await request.app[keys.THREADS].run(lambda karr: settings.current(karr.db))
    return json_response(settings_dict(values))


@routes.patch("/api/v1/settings")
@access("admin")
async def patch_settings(request: web.Request) -> web.Response:
    """`{"key": value, ...}`; `null` removes a saved value. All or none are saved."""
    body = await json_body(request)
    if not body:
        raise bad_request("body", "names no setting", f"settings: {', '.join(settings.SETTINGS)}")
    for key in body:
        if key not in settings.SETTINGS:
            raise bad_request(key, "is not a setting",
                              f"settings: {', '.join(settings.SETTINGS)}")
    by = actor_of(request).token_id
    values = await request.app[keys.THREADS].run(
        lambda karr: settings.save(karr.db, body, by))
    return json_response(settings_dict(values))


def token_dict(token: tokens.Token) -> dict:
    return {**attrs.asdict(token), "state": token.state()}


@routes.get("/api/v1/tokens")
@access("admin")
async def list_tokens(request: web.Request) -> web.Response:
    found = await request.app[keys.THREADS].run(lambda karr: tokens.list_all(karr.db))
    return json_response({"tokens": [token_dict(t) for t in found]})


@routes.post("/api/v1/tokens")
@access("admin")
async def create_token(request: web.Request) -> web.Response:
    """`{"name", "role", "expires_in"?: "30d"}` -> the token and, this once, its secret."""
    body = await json_body(request)
    name, role, expires = body.get("name"), body.get("role"), body.get("expires_in")
    if not isinstance(name, str):
        raise bad_request("name", "must be a string")
    if role not in tokens.ROLES:
        raise bad_request("role", f"must be one of {', '.join(tokens.ROLES)}")
    if expires is not None and not isinstance(expires, str):
        raise bad_request("expires_in", "must be a duration like 30d, or absent")
    extra = set(body) - {"name", "role", "expires_in"}
    if extra:
        raise bad_request(sorted(extra)[0], "is not a field of a token")
    seconds = tokens.parse_duration(expires) if expires is not None else None
    by = actor_of(request).token_id
    token, secret = await request.app[keys.THREADS].run(
        lambda karr: tokens.create(karr.db, name, role, expires_in=seconds, created_by=by))
    return json_response({"token": token_dict(token), "secret": secret}, status=201)


@routes.delete("/api/v1/tokens/{token_id}")
@access("admin")
async def revoke_token(request: web.Request) -> web.Response:
    token = await request.app[keys.THREADS].run(revoke_or_404, request.match_info["token_id"])
    return json_response({"token": token_dict(token)})


def revoke_or_404(karr, token_id: str) -> tokens.Token:
    """Revoke a token by its id (the API's and the tokens page's one way)."""
    if tokens.get(karr.db, token_id) is None:
        raise not_found(f"token {token_id!r}", "see the tokens page or GET /api/v1/tokens")
    return tokens.revoke(karr.db, token_id)
