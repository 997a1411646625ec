"""What one `kitt web` server runs with."""

from __future__ import annotations

from pathlib import Path

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
    open_enrollment: bool = False
    """Agents may register without an enrollment token; they wait, pending, for an admin."""
    agent_heartbeat_s: float = 15.0
    """The interval agents are told to heartbeat at (each jitters it by up to 20%)."""
    agent_lost_after_s: float = 180.0
    """An agent silent this long is lost, and so are the jobs it held."""
    cancel_grace_s: float = 60.0
    """A cancel its silent agent has not confirmed in this long is finalised here."""
    agent_dist: Path | None = None
    """The wheels the agent installer serves (`kitt web dist build`); None: none."""
    metrics_cache_s: float = 10.0
    """How long /metrics reuses its snapshot of the store (several scrapers share it)."""
    influx_url: str | None = None
    """Every run that lands here is also written to this InfluxDB (`--influx`)."""
    claim_wait_s: float = 25.0
    """How long an agent's claim waits for a job before answering 204 (long poll)."""

    @property
    def secure(self) -> bool:
        return self.tls is not None

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"
