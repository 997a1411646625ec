"""Who may do what: every route needs a token unless it is declared open; roles order
viewer < operator < admin; bad, expired and revoked tokens are refused with a reason."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from support.web import web_client

import kitt
from kitt_web.app import make_app
from kitt_web.auth import Rule
from kitt_web.config import WebConfig
from kitt_web.state import open_state, tokens

OPEN = {("GET", "/api/v1/health"), ("GET", "/login"), ("POST", "/login"),
        # An agent enrolls with an enrollment token in the body, or lands pending.
        ("POST", "/api/v1/agent/register"),
        # The agent installer and its wheels: public code, no secret in them.
        ("GET", "/api/v1/agent/install.sh"), ("GET", "/api/v1/agent/dist"),
        ("GET", "/api/v1/agent/dist/nothing0"),
        # The KITT image's build context (KITT's sources) that `kitt-agent build` uses.
        ("GET", "/api/v1/agent/image"), ("GET", "/api/v1/agent/image/nothing0")}


EXAMPLES = {"run_id": "run-00001", "token_id": "kitt_nothing0", "action": "approve"}
"""What each path parameter is filled with (any other: a name nothing has)."""


def routes():
    """Every (method, path, rule) the application serves, read from its router: a route
    added later is covered without editing this test."""
    app = make_app(WebConfig(store_url="sqlite:///unused.db"))
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method == "HEAD" or path is None or path.startswith("/static"):
            continue
        rule = getattr(route.handler, "kitt_rule", Rule())
        found.append((route.method, re.sub(r"\{(\w+)(?::[^}]*)?\}",
                                           lambda m: EXAMPLES.get(m[1], "nothing0"), path),
                      rule))
    return found


def test_only_declared_routes_are_open():
    declared_open = {(m, p) for m, p, rule in routes() if rule.role == "open"}
    assert declared_open == OPEN


@pytest.mark.parametrize(("method", "path", "rule"),
                         [r for r in routes() if r[2].role != "open"],
                         ids=lambda v: v if isinstance(v, str) else "")
async def test_every_other_route_needs_a_token(client, method, path, rule):
    response = await client.request(method, path, headers={"Accept": "application/json"})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "path", "rule"),
                         [r for r in routes() if r[2].role in ("operator", "admin")],
                         ids=lambda v: v if isinstance(v, str) else "")
async def test_a_lower_role_is_forbidden(client, seeded, method, path, rule):
    lower = "viewer" if rule.role == "operator" else "operator"
    response = await client.request(method, path, headers={**seeded.auth(lower),
                                                           "Accept": "application/json"})
    assert response.status == 403
    body = await response.json()
    assert body["error"]["code"] == "forbidden" and rule.role in body["error"]["message"]


async def test_health_is_open_and_pages_redirect_to_login(client):
    assert (await client.get("/api/v1/health")).status == 200
    response = await client.get("/runs?model=a.gguf", allow_redirects=False)
    assert response.status == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/runs?model=a.gguf"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer ",
                                    "kitt_" + "a" * 43])
async def test_a_malformed_authorization_header_is_401(client, header):
    response = await client.get("/api/v1/runs", headers={"Authorization": header})
    assert response.status == 401


async def test_unknown_expired_and_revoked_tokens_say_which(client, seeded):
    unknown = "kitt_" + "x" * 43
    response = await client.get("/api/v1/runs", headers={"Authorization": f"Bearer {unknown}"})
    assert response.status == 401
    assert (await response.json())["error"]["message"] == "unknown token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]

    with kitt.open_store(seeded.url) as store:
        db = open_state(store)
        old, old_secret = tokens.create(db, "short", "viewer", expires_in=60)
        with db.transaction() as cur:  # as if its minute had passed
            cur.execute("UPDATE web_tokens SET expires_at = ? WHERE id = ?",
                        (time.time() - 1, old.id))
        gone, gone_secret = tokens.create(db, "gone", "admin")
        tokens.revoke(db, gone.id)
    for secret, state in ((old_secret, "expired"), (gone_secret, "revoked")):
        response = await client.get("/api/v1/runs",
                                    headers={"Authorization": f"Bearer {secret}"})
        assert response.status == 401
        assert (await response.json())["error"]["message"].endswith(f"is {state}")


async def test_roles_grant_what_they_say(client, seeded):
    for role in ("viewer", "operator", "admin"):
        assert (await client.get("/api/v1/runs", headers=seeded.auth(role))).status == 200
    assert (await client.get("/api/v1/settings", headers=seeded.auth("admin"))).status == 200
    assert (await client.delete(f"/api/v1/runs/{seeded.run_ids[0]}",
                                headers=seeded.auth("viewer"))).status == 403
    assert (await client.delete(f"/api/v1/runs/{seeded.run_ids[0]}",
                                headers=seeded.auth("admin"))).status == 204


async def test_public_read_opens_reads_only(seeded):
    async with web_client(seeded.url, public_read=True) as client:
        assert (await client.get("/api/v1/runs")).status == 200
        assert (await client.get(f"/api/v1/runs/{seeded.run_ids[0]}")).status == 200
        assert (await client.get("/", allow_redirects=False)).status == 200
        for method, path in (("GET", "/api/v1/tokens"), ("GET", "/api/v1/settings"),
                             ("DELETE", f"/api/v1/runs/{seeded.run_ids[0]}"),
                             ("POST", "/api/v1/tokens"), ("PATCH", "/api/v1/settings")):
            response = await client.request(method, path,
                                            headers={"Accept": "application/json"})
            assert response.status == 401, (method, path)
        # A bad token is still refused: public reading is for those who send none.
        response = await client.get("/api/v1/runs",
                                    headers={"Authorization": "Bearer kitt_" + "z" * 43})
        assert response.status == 401


async def test_kitt_auth_token_is_an_admin_while_set(seeded, monkeypatch):
    from kitt_web.serve import prepare_state

    secret = "upstream-style-token-value-1234567890"
    assert prepare_state(seeded.url, secret) is None  # an admin exists: none is created
    async with web_client(seeded.url) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        assert (await client.get("/api/v1/settings", headers=headers)).status == 200
        prepare_state(seeded.url, None)  # restarted without it
        assert (await client.get("/api/v1/settings", headers=headers)).status == 401
        prepare_state(seeded.url, "another-value-0987654321")  # a new value replaces it
        assert (await client.get("/api/v1/settings", headers=headers)).status == 401


def test_a_first_start_creates_one_admin_and_says_its_secret_once(tmp_path):
    from kitt_web.serve import prepare_state

    url = f"sqlite://{tmp_path / 'fresh.db'}"
    secret = prepare_state(url, None)
    assert secret is not None and tokens.looks_like_token(secret)
    assert prepare_state(url, None) is None
    with kitt.open_store(url) as store:
        found = tokens.list_all(open_state(store))
    assert [(t.name, t.role) for t in found] == [("admin", "admin")]
