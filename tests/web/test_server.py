"""`kitt web` as a user starts it: HTTPS by default with KITT's own CA, the first admin
token said once, plain HTTP only when asked (and said), clear refusals of bad starts,
a structured access log without secrets, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import socket
import ssl

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from support import free_port, run_kitt
from support.stores import make_run
from support.web import TOKEN, start_web

import kitt

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path):
    env = {"KITT_HOME": str(tmp_path / "home"), "KITT_STORE": "",
           "KITT_AUTH_TOKEN": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return env


async def fetch(url: str, *, ca=None, token=None) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, \
            session.get(url, ssl=context if ca else None, headers=headers) as response:
        return response.status, await response.text()


def test_https_by_default_with_a_pinned_local_ca(home, tmp_path):
    port = free_port()
    web, said = start_web("--port", str(port), env=home, log=tmp_path / "web.log")
    try:
        secret = TOKEN.search(said)[0]
        ca_path = tmp_path / "home" / "web" / "tls" / "ca.pem"
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        shown = ca.fingerprint(ca.signature_hash_algorithm.__class__()).hex(":").upper()
        assert f"CA SHA-256 fingerprint {shown}" in said
        assert f"https://127.0.0.1:{port}/" in said
        # A client that trusts only this CA verifies the server by name and by address.
        for host in ("localhost", "127.0.0.1"):
            status, body = asyncio.run(fetch(f"https://{host}:{port}/api/v1/health", ca=ca_path))
            assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, _ = asyncio.run(fetch(f"https://localhost:{port}/api/v1/runs", ca=ca_path,
                                      token=secret))
        assert status == 200
        # Without the CA, verification fails: nothing is served unverified by default.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            asyncio.run(fetch(f"https://localhost:{port}/api/v1/health", ca=None))
        # Plain HTTP to the TLS port gets no page.
        with pytest.raises(aiohttp.ClientError):
            asyncio.run(fetch(f"http://127.0.0.1:{port}/api/v1/health"))
    finally:
        code, err = web.stop()
    assert code == 0 and "stopped" in err
    # The access log: one JSON object per request, never a token.
    entries = [json.loads(line) for line in err.splitlines() if line.startswith('{"ts"')]
    assert {e["path"] for e in entries} >= {"/api/v1/health", "/api/v1/runs"}
    assert any(e["actor"] != "anonymous" for e in entries)
    assert secret not in err.replace(said, "")  # said once at start, never logged
    # A second start creates no admin and says no secret; the CA stays the same.
    web, said = start_web("--port", str(port), env=home, log=tmp_path / "again.log")
    code, err = web.stop()
    assert not TOKEN.search(err) and f"fingerprint {shown}" in said


def test_the_pin_matches_the_ca_key(home, tmp_path):
    from kitt_web.tls import spki_sha256

    web, _ = start_web("--port", str(free_port()), env=home, log=tmp_path / "web.log")
    web.stop()
    ca_path = tmp_path / "home" / "web" / "tls" / "ca.pem"
    key = x509.load_pem_x509_certificate(ca_path.read_bytes()).public_key()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64

    assert spki_sha256(ca_path) == base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_insecure_serves_plain_http_and_says_so_every_start(home, tmp_path):
    port = free_port()
    for start in range(2):
        web, said = start_web("--port", str(port), "--insecure", env=home,
                              log=tmp_path / f"web{start}.log")
        try:
            assert "WARNING: plain HTTP (--insecure)" in said
            status, _ = asyncio.run(fetch(f"http://127.0.0.1:{port}/api/v1/health"))
            assert status == 200
        finally:
            web.stop()


@pytest.mark.parametrize(("args", "message"), [
    (("--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"),
     "does not exist"),
    (("--tls-cert", "/nonexistent/cert.pem"), "go together"),
    (("--insecure", "--tls-san", "x.example"), "takes no TLS options"),
    (("--tls-san", "bad name"), "bad --tls-san"),
    (("--store", "postgresql://kitt:wrong@127.0.0.1:1/none"), "cannot connect"),
    (("--store", "mysql://x/y"), "no storage backend"),
])
def test_a_bad_start_exits_2_naming_the_problem(home, args, message):
    result = run_kitt("web", "--port", str(free_port()), *args, env=home, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "fix:" in result.stderr
    assert "serving" not in result.stderr


def test_a_busy_port_exits_2(home):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_kitt("web", "--port", str(port), "--insecure", env=home, timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_sigterm_lets_a_request_in_flight_finish(home, tmp_path):
    url = f"sqlite://{tmp_path / 'big.db'}"
    with kitt.open_store(url) as store:
        store.save_runs([make_run(i, repeats=3, metrics=20) for i in range(1, 400)])
    port = free_port()
    web, said = start_web("--port", str(port), "--insecure", "--store", url, env=home,
                          log=tmp_path / "web.log")
    secret = TOKEN.search(said)[0]

    async def export_across_the_stop() -> list[dict]:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/api/v1/runs-export?format=json",
                headers={"Authorization": f"Bearer {secret}"}) as response:
            first = await response.content.readany()  # the export is under way
            web.proc.send_signal(signal.SIGTERM)
            rest = await response.read()
        return json.loads(first + rest)

    documents = asyncio.run(export_across_the_stop())
    code, err = web.stop(sig=None)  # signalled mid-export above
    assert len(documents) == 399  # the whole export, not a cut-off one
    assert code == 0 and "SIGTERM: finishing requests in flight" in err


def test_tokens_from_the_command_line(home):
    made = run_kitt("web", "token", "create", "ci-gate", "--role", "operator",
                    "--expires", "30d", "--json", env=home)
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    assert TOKEN.fullmatch(token["secret"]) and token["role"] == "operator"
    listed = run_kitt("web", "token", "list", env=home)
    assert token["id"] in listed.stdout and "ci-gate" in listed.stdout
    assert token["secret"] not in listed.stdout + listed.stderr
    assert run_kitt("web", "token", "revoke", "ci-gate", env=home).returncode == 0
    assert "revoked" in run_kitt("web", "token", "list", env=home).stdout
    for args in (("create", "x", "--role", "root"), ("create", "x", "--role", "viewer",
                                                     "--expires", "soon"),
                 ("revoke", "kitt_nothing0")):
        result = run_kitt("web", "token", *args, env=home)
        assert result.returncode == 2, (args, result.stderr)
