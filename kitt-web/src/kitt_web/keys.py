"""The typed keys of the application and of its requests (one place, no import cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    pass

CONFIG = web.AppKey("config", "WebConfig")
THREADS = web.AppKey("threads", "StoreThreads")
LIMITER = web.AppKey("limiter", "LoginLimiter")
TEMPLATES = web.AppKey("templates", object)
NOTIFIER = web.AppKey("notifier", "Notifier")
STARTED_AT = web.AppKey("started_at", float)
INFLUX = web.AppKey("influx", "Forwarder")

# Request keys: typed where this aiohttp has them (3.12+), names otherwise.
_RequestKey = getattr(web, "RequestKey", None)
ACTOR = _RequestKey("actor", object) if _RequestKey else "kitt_web.actor"
STALE_SESSION = _RequestKey("stale_session", bool) if _RequestKey else "kitt_web.stale_session"
AGENT = _RequestKey("agent", object) if _RequestKey else "kitt_web.agent"
"""(Agent, stale): the agent an agent route serves, and whether it used its old token."""
