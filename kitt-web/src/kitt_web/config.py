"""What one `kitt web` server runs with."""

from __future__ import annotations

import attrs

from kitt_web.tls import TlsFiles

MAX_BODY = 1024 * 1024
"""Request bodies over this are refused (413): no endpoint takes more."""


@attrs.frozen
class WebConfig:
    store_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    tls: TlsFiles | None = None
    """None serves plain HTTP (`--insecure`)."""
    public_read: bool = False
    """Read-only pages and GET endpoints without a token (never tokens, settings, agents)."""
    env_token: str | None = None
    """KITT_AUTH_TOKEN: an admin token given by the environment."""
    max_body: int = MAX_BODY
    store_threads: int = 4
    login_attempts: int = 10
    """Failed logins allowed per client address per `login_window_s`."""
    login_window_s: float = 300.0
    session_idle_s: float = 12 * 3600.0
    session_absolute_s: float = 7 * 86400.0

    @property
    def secure(self) -> bool:
        return self.tls is not None

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"
