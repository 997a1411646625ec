"""Browser sessions: a login with a token opens one; the cookie holds its secret, the
table its SHA-256 digest. A session lives until its idle or absolute limit, logout, or
its token's revocation or expiry (checked on every request)."""

from __future__ import annotations

import secrets
import time

import attrs

import kitt
from kitt_web.state.tokens import Token, digest

IDLE_S = 12 * 3600.0
"""A session unused this long ends."""
ABSOLUTE_S = 7 * 86400.0
"""No session outlives this, however busy."""


@attrs.frozen
class Session:
    token: Token
    csrf: str
    expires_at: float


def open_session(db: kitt.Database, token: Token, *, now: float | None = None,
                 absolute_s: float = ABSOLUTE_S) -> tuple[Session, str]:
    """A new session for `token` and the cookie's secret."""
    now = now or time.time()
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires_at = now + absolute_s
    if token.expires_at is not None:
        expires_at = min(expires_at, token.expires_at)
    with db.transaction() as cur:
        cur.execute("INSERT INTO web_sessions (digest, token_id, csrf, created_at, expires_at, "
                    "last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (digest(secret), token.id, csrf, now, expires_at, now))
    return Session(token, csrf, expires_at), secret


def find(db: kitt.Database, secret: str, *, now: float | None = None,
         idle_s: float = IDLE_S) -> Session | None:
    """The live session of this cookie secret, with its token (active), or None; a use
    more than a minute after the last one is recorded (the idle clock)."""
    if not secret:
        return None
    now = now or time.time()
    rows = db.query(
        "SELECT s.csrf, s.expires_at, s.last_seen_at, t.id, t.name, t.role, t.created_at, "
        "t.created_by, t.expires_at, t.revoked_at, t.last_used_at FROM web_sessions s "
        "JOIN web_tokens t ON t.id = s.token_id WHERE s.digest = ?", (digest(secret),))
    if not rows:
        return None
    csrf, expires_at, last_seen_at, *token_row = rows[0]
    token = Token(*token_row)
    if expires_at <= now or last_seen_at + idle_s <= now or token.state(now) != "active":
        close(db, secret)
        return None
    if now - last_seen_at > 60:
        with db.transaction() as cur:
            cur.execute("UPDATE web_sessions SET last_seen_at = ? WHERE digest = ?",
                        (now, digest(secret)))
    return Session(token, csrf, expires_at)


def close(db: kitt.Database, secret: str) -> None:
    with db.transaction() as cur:
        cur.execute("DELETE FROM web_sessions WHERE digest = ?", (digest(secret),))


def purge(db: kitt.Database, *, now: float | None = None, idle_s: float = IDLE_S) -> int:
    """Delete ended sessions; how many."""
    now = now or time.time()
    with db.transaction() as cur:
        cur.execute("DELETE FROM web_sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                    (now, now - idle_s))
        return cur.rowcount
