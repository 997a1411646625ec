"""The browser's way in: a login form that takes a token once, a session cookie
(HttpOnly, SameSite=Strict, Secure under TLS), CSRF on every state change, logout, and
sessions that end with their token or their time."""

from __future__ import annotations

import re
import time
from http.cookies import SimpleCookie

import pytest
from support.web import csrf_of, login, web_client

import kitt
from kitt_web.state import open_state, sessions, tokens
from kitt_web.tls import TlsFiles


async def test_a_login_opens_a_session_the_pages_and_api_accept(client, seeded):
    response = await login(client, seeded.secrets["viewer"], "/runs?model=a.gguf")
    assert response.status == 303
    assert response.headers["Location"] == "/runs?model=a.gguf"
    cookie = SimpleCookie(response.headers["Set-Cookie"])["kitt_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert seeded.secrets["viewer"] not in response.headers["Set-Cookie"]
    page = await client.get("/runs?model=a.gguf")
    assert page.status == 200 and "viewer-token" in await page.text()
    assert (await client.get("/api/v1/runs")).status == 200


async def test_the_session_cookie_is_secure_under_tls(seeded, tmp_path):
    files = TlsFiles(tmp_path / "cert.pem", tmp_path / "key.pem")  # only its presence counts
    async with web_client(seeded.url, tls=files) as client:
        # Served over plain HTTP by the test server: read Set-Cookie, not the jar.
        form = await client.get("/login")
        nonce = re.search(r'name="login_csrf" value="([^"]+)"', await form.text())[1]
        client.session.cookie_jar.update_cookies({"kitt_login_csrf": nonce})
        response = await client.post("/login", data={"token": seeded.secrets["admin"],
                                                     "login_csrf": nonce, "next": "/"},
                                     allow_redirects=False)
        assert response.status == 303
        cookie = SimpleCookie(response.headers["Set-Cookie"])["__Host-kitt_session"]
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize("next_path", ["//evil.example/x", "https://evil.example/",
                                       "/\\evil.example", "javascript:alert(1)"])
async def test_login_never_redirects_off_the_server(client, seeded, next_path):
    response = await login(client, seeded.secrets["viewer"], next_path)
    assert response.headers["Location"] == "/"


async def test_a_login_without_its_form_token_is_refused(client, seeded):
    response = await client.post("/login", data={"token": seeded.secrets["admin"],
                                                 "login_csrf": "forged"},
                                 headers={"Accept": "application/json"})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "bad_csrf"


async def test_failed_logins_are_limited_per_address(seeded):
    async with web_client(seeded.url, login_attempts=3) as client:
        for _ in range(3):
            assert (await login(client, "kitt_" + "n" * 43)).status == 401
        limited = await login(client, seeded.secrets["admin"])  # even the right one now
        assert limited.status == 429
        assert int(limited.headers["Retry-After"]) > 0


async def test_state_changes_need_the_sessions_csrf_token(client, seeded):
    await login(client, seeded.secrets["admin"])
    page = await client.get("/settings")
    csrf = csrf_of(await page.text())
    body = {"devon_url": "https://devon.example"}
    refused = await client.patch("/api/v1/settings", json=body)
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "bad_csrf"
    wrong = await client.patch("/api/v1/settings", json=body, headers={"X-CSRF-Token": "x"})
    assert wrong.status == 403
    foreign = await client.patch("/api/v1/settings", json=body, headers={
        "X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert foreign.status == 403 and (await foreign.json())["error"]["code"] == "bad_origin"
    ok = await client.patch("/api/v1/settings", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status == 200
    # Forms carry it as a field.
    form = await client.post("/settings", data={"csrf_token": csrf, "model_dir": "/m"},
                             allow_redirects=False)
    assert form.status == 303
    forged = await client.post("/settings", data={"model_dir": "/x"}, allow_redirects=False)
    assert forged.status == 403
    with kitt.open_store(seeded.url) as store:
        from kitt_web.state import settings

        values = settings.current(open_state(store))
    assert values["model_dir"].value == "/m"  # the forged post changed nothing


async def test_bearer_requests_need_no_csrf_token(client, seeded):
    response = await client.patch("/api/v1/settings", json={"devon_tab": True},
                                  headers=seeded.auth("admin"))
    assert response.status == 200


async def test_logout_ends_the_session(client, seeded):
    await login(client, seeded.secrets["viewer"])
    csrf = csrf_of(await (await client.get("/")).text())
    response = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert (await client.get("/api/v1/runs")).status == 401
    with kitt.open_store(seeded.url) as store:
        assert open_state(store).query("SELECT count(*) FROM web_sessions") == [(0,)]


async def test_revoking_the_token_ends_its_sessions(client, seeded):
    await login(client, seeded.secrets["operator"])
    assert (await client.get("/api/v1/runs")).status == 200
    with kitt.open_store(seeded.url) as store:
        db = open_state(store)
        tokens.revoke(db, tokens.find(db, seeded.secrets["operator"]).id)
    response = await client.get("/api/v1/runs")
    assert response.status == 401
    assert "kitt_session=" in response.headers.get("Set-Cookie", "")  # cleared


async def test_sessions_end_when_idle_or_old(seeded):
    with kitt.open_store(seeded.url) as store:
        db = open_state(store)
        token = tokens.find(db, seeded.secrets["viewer"])
        now = time.time()
        _, idle = sessions.open_session(db, token, now=now - 3600)
        _, old = sessions.open_session(db, token, now=now - 100, absolute_s=60)
        _, fresh = sessions.open_session(db, token, now=now)
        assert sessions.find(db, idle, now=now, idle_s=1800) is None
        assert sessions.find(db, old, now=now) is None
        assert sessions.find(db, fresh, now=now) is not None
        # Ended sessions are deleted when found, not only hidden.
        assert db.query("SELECT count(*) FROM web_sessions") == [(1,)]


async def test_a_session_never_outlives_its_token(seeded):
    with kitt.open_store(seeded.url) as store:
        db = open_state(store)
        token, _ = tokens.create(db, "brief", "viewer", expires_in=120)
        session, _ = sessions.open_session(db, token)
        assert session.expires_at <= token.expires_at


def test_the_store_holds_digests_never_secrets(seeded):
    with kitt.open_store(seeded.url) as store:
        db = open_state(store)
        token = tokens.find(db, seeded.secrets["admin"])
        _, cookie = sessions.open_session(db, token)
        dump = repr(db.query("SELECT * FROM web_tokens")) + repr(
            db.query("SELECT * FROM web_sessions"))
    for secret in (*seeded.secrets.values(), cookie):
        assert secret not in dump and secret[5:] not in dump
    assert tokens.digest(seeded.secrets["admin"]) in dump
    assert len(seeded.secrets["admin"]) == 48  # kitt_ + 43 url-safe chars = 256 bits


def test_the_login_limiter_forgets_old_addresses_first():
    from kitt_web.auth import LoginLimiter

    limiter = LoginLimiter(attempts=2, window_s=60)
    limiter.MAX_ADDRESSES = 10
    limiter.failed("attacker", now=0.0)
    limiter.failed("attacker", now=1.0)
    for i in range(11):  # a spray of other addresses, each failing once, later
        limiter.failed(f"10.0.0.{i}", now=2.0 + i)
    assert len(limiter.failures) <= 10
    assert limiter.retry_after("10.0.0.10", now=13.0) is None  # one failure: may retry
    limiter.failed("10.0.0.10", now=14.0)
    assert limiter.retry_after("10.0.0.10", now=15.0) == pytest.approx(12.0 + 60 - 15.0)
    assert limiter.retry_after("10.0.0.10", now=72.5) is None  # the first has left the window
