"""The agent's side of the protocol (docs/agent-protocol.md): one aiohttp session to its
server. With a pin, the server is trusted by its public key (SHA-256 of the certificate's
SubjectPublicKeyInfo, as curl's --pinnedpubkey): checked after the handshake and before
any byte of a request, so no token ever reaches another host."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
from typing import Any

import aiohttp

import kitt


class Refused(Exception):
    """The server turned the agent away: 401 (bad, revoked or removed token) or 404 (it
    does not know this agent: its database was reset, or the agent was deleted)."""

    def __init__(self, status: int, code: str, message: str, hint: str | None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint


class Unreachable(Exception):
    """No answer (connection refused, reset, timeout, 5xx): retry later."""


class PinMismatch(Exception):
    pass


def spki_pin(der_cert: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_der_x509_certificate(der_cert).public_key()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


class PublicKeyPin(aiohttp.Fingerprint):
    """aiohttp checks a Fingerprint on the fresh TLS connection before it sends the
    request; this one compares the server's public key, not the whole certificate, so a
    re-issued certificate for the same key (a new name, a renewal) still matches."""

    def __init__(self, pin: str) -> None:
        if not pin.startswith("sha256//"):
            raise kitt.BadInput(f"bad pin {pin!r}", hint="give sha256//BASE64, as kitt web "
                                "prints it ('agents pin ...')")
        super().__init__(hashlib.sha256(pin.encode()).digest())
        self.pin = pin

    def check(self, transport: Any) -> None:
        # aiohttp closes the connection on ServerFingerprintMismatch; nothing was sent.
        ssl_object = transport.get_extra_info("ssl_object")
        got = spki_pin(ssl_object.getpeercert(binary_form=True)) if ssl_object else "none"
        if got != self.pin:
            host, port, *_ = transport.get_extra_info("peername")
            raise aiohttp.ServerFingerprintMismatch(self.pin.encode(), got.encode(), host,
                                                    port)


def ssl_param(pin: str | None, ca_file: str | None) -> Any:
    if pin:
        return PublicKeyPin(pin)
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True  # the system's CAs


class ServerClient:
    def __init__(self, server: str, *, pin: str | None = None, ca_file: str | None = None,
                 agent_id: str | None = None, token: str | None = None) -> None:
        self.server = server.rstrip("/")
        self.agent_id, self.token = agent_id, token
        self._ssl = ssl_param(pin, ca_file) if self.server.startswith("https://") else None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ServerClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=90),
            headers={"User-Agent": "kitt-agent"})
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, *, json_body: Any = None,
                   data: bytes | None = None, params: dict | None = None,
                   headers: dict | None = None, ok: tuple[int, ...] = (200, 201, 204),
                   authorized: bool = True) -> tuple[int, Any]:
        """(status, decoded JSON or None). Refused for 401/404 of an agent route,
        Unreachable for no answer or a 5xx; other 4xx raise kitt.BadInput naming the
        server's message (409 comes back to the caller, which knows what it means)."""
        assert self._session is not None
        sent = dict(headers or {})
        if authorized and self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        try:
            async with self._session.request(method, self.server + path, json=json_body,
                                             data=data, params=params, headers=sent,
                                             ssl=self._ssl) as response:
                text = await response.text()
                status = response.status
        except aiohttp.ServerFingerprintMismatch as exc:
            raise PinMismatch(f"{self.server} presented the key {exc.got.decode()}, not the "
                              f"pinned {exc.expected.decode()}") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise kitt.BadInput(f"cannot verify {self.server}: {exc.certificate_error}",
                                hint="pin its key: kitt-agent init --pin sha256//... (kitt "
                                     "web prints it), or give --ca-file") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(f"{self.server}: {exc or type(exc).__name__}") from None
        body = None
        if text:
            try:
                body = json.loads(text)
            except ValueError:
                body = None
        if status >= 500:
            raise Unreachable(f"{self.server} answered {status}")
        error = (body or {}).get("error") if isinstance(body, dict) else None
        if status in (401, 404) and path.startswith("/api/v1/agents/") and error:
            raise Refused(status, error.get("code", ""), error.get("message", ""),
                          error.get("hint"))
        if status not in ok and status != 409:
            message = error.get("message") if error else text[:300]
            hint = error.get("hint") if error else None
            raise kitt.BadInput(f"the server refused {method} {path}: {status} {message}",
                                hint=hint)
        return status, body

    async def raw(self, method: str, path: str) -> bytes:
        """A body as bytes (a wheel); Unreachable or BadInput as for `call`."""
        assert self._session is not None
        try:
            async with self._session.request(method, self.server + path,
                                             ssl=self._ssl) as response:
                data = await response.read()
                status = response.status
        except aiohttp.ServerFingerprintMismatch as exc:
            raise PinMismatch(f"{self.server} presented the key {exc.got.decode()}, not the "
                              f"pinned {exc.expected.decode()}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(f"{self.server}: {exc or type(exc).__name__}") from None
        if status != 200:
            raise kitt.BadInput(f"the server refused {method} {path}: {status}")
        return data

    def agent_path(self, rest: str) -> str:
        return f"/api/v1/agents/{self.agent_id}/{rest}"
