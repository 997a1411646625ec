"""Tokens: 256 random bits, shown once, kept only as a SHA-256 digest.

A token reads `kitt_<43 url-safe characters>`; its first 8 characters after `kitt_` name it
(the id, shown in lists and logs: `kitt_Ab3dEf9h`). The digest of a high-entropy secret
needs no salt or slow hash: nobody can guess a preimage, and lookups stay one index probe.
`KITT_AUTH_TOKEN`, the variable upstream KITT's users set, is kept as the row `env` while
it is set (admin), so sessions and revocation work for it as for any other token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Sequence

import attrs

import kitt

PREFIX = "kitt_"
ROLES = ("viewer", "operator", "admin")
"""Each role can do everything the ones before it can."""
ENV_TOKEN_ID = "env"
_TOKEN = re.compile(r"kitt_[A-Za-z0-9_-]{43}")
_DURATION = re.compile(r"([0-9]+)([smhdw])")  # ASCII digits only, as the API documents
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_COLUMNS = ("id", "name", "role", "created_at", "created_by", "expires_at", "revoked_at",
            "last_used_at")


@attrs.frozen
class Token:
    id: str
    name: str
    role: str
    created_at: float
    created_by: str | None = None
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None

    def state(self, now: float | None = None) -> str:
        """`active`, `expired` or `revoked`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or time.time()):
            return "expired"
        return "active"

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_token(secret: str) -> bool:
    return bool(_TOKEN.fullmatch(secret))


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `90m`, `2w`, `45s` -> seconds."""
    match = _DURATION.fullmatch(text)
    if not match or int(match[1]) == 0:
        raise kitt.BadInput(f"bad duration {text!r}",
                            hint="a positive number and a unit: 45s, 90m, 12h, 30d, 2w")
    return int(match[1]) * _UNITS[match[2]]


def check_role(role: str) -> str:
    if role not in ROLES:
        raise kitt.BadInput(f"unknown role {role!r}", hint=f"use one of: {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    if not name.strip() or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise kitt.BadInput(f"bad token name {name!r}",
                            hint="1 to 100 printable characters, e.g. ci-gate or alice")
    return name.strip()


def create(db: kitt.Database, name: str, role: str, *, expires_in: float | None = None,
           created_by: str | None = None) -> tuple[Token, str]:
    """A new token and its secret: the only time the secret exists outside its holder."""
    check_role(role)
    name = check_name(name)
    now = time.time()
    with db.transaction() as cur:
        while True:
            secret = PREFIX + secrets.token_urlsafe(32)  # 32 bytes: 43 characters
            token_id = secret[:len(PREFIX) + 8]
            cur.execute("SELECT 1 FROM web_tokens WHERE id = ?", (token_id,))
            if cur.fetchone() is None:
                break
        token = Token(token_id, name, role, now, created_by,
                      None if expires_in is None else now + expires_in)
        cur.execute("INSERT INTO web_tokens (id, digest, name, role, created_at, created_by, "
                    "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (token.id, digest(secret), token.name, token.role, token.created_at,
                     token.created_by, token.expires_at))
    return token, secret


def _token(row: Sequence) -> Token:
    return Token(*row)


def by_secret(db: kitt.Database, secret: str) -> Token | None:
    """The token whose secret this is, in any state, or None."""
    if not secret:
        return None
    rows = db.query(f"SELECT {', '.join(_COLUMNS)} FROM web_tokens WHERE digest = ?",
                    (digest(secret),))
    return _token(rows[0]) if rows else None


def find(db: kitt.Database, secret: str) -> Token | None:
    """The active token whose secret this is, or None (unknown, expired, revoked)."""
    token = by_secret(db, secret)
    return token if token is not None and token.state() == "active" else None


def touch(db: kitt.Database, token_id: str, now: float | None = None) -> None:
    """Record a use (at most once a minute per token: no write per request)."""
    now = now or time.time()
    with db.transaction() as cur:
        cur.execute("UPDATE web_tokens SET last_used_at = ? WHERE id = ? AND "
                    "(last_used_at IS NULL OR last_used_at < ?)", (now, token_id, now - 60))


def list_all(db: kitt.Database) -> list[Token]:
    return [_token(row) for row in db.query(
        f"SELECT {', '.join(_COLUMNS)} FROM web_tokens ORDER BY created_at, id")]


def get(db: kitt.Database, token_id: str) -> Token | None:
    rows = db.query(f"SELECT {', '.join(_COLUMNS)} FROM web_tokens WHERE id = ?", (token_id,))
    return _token(rows[0]) if rows else None


def resolve(db: kitt.Database, ref: str) -> Token:
    """A token by id (`kitt_Ab3dEf9h`), or by name when exactly one has it."""
    found = get(db, ref)
    if found is not None:
        return found
    named = [token for token in list_all(db) if token.name == ref]
    if len(named) == 1:
        return named[0]
    if named:
        raise kitt.BadInput(f"{len(named)} tokens are named {ref!r}",
                            hint="give the token's id (kitt web token list)")
    raise kitt.BadInput(f"no token {ref!r}", hint="see `kitt web token list` for ids and names")


def revoke(db: kitt.Database, token_id: str, now: float | None = None) -> Token:
    """Revoke a token (idempotent): it and every session it opened stop working at once."""
    with db.transaction() as cur:
        cur.execute("UPDATE web_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (now or time.time(), token_id))
        cur.execute("DELETE FROM web_sessions WHERE token_id = ?", (token_id,))
    token = get(db, token_id)
    if token is None:
        raise kitt.BadInput(f"no token {token_id!r}", hint="see `kitt web token list`")
    return token


def has_admin(db: kitt.Database) -> bool:
    now = time.time()
    return bool(db.query(
        "SELECT 1 FROM web_tokens WHERE role = 'admin' AND revoked_at IS NULL AND id <> ? "
        "AND (expires_at IS NULL OR expires_at > ?)", (ENV_TOKEN_ID, now)))


def sync_env_token(db: kitt.Database, secret: str | None) -> None:
    """Keep the `env` row in step with KITT_AUTH_TOKEN: active with its digest while set,
    revoked (its sessions ended) when not; a changed value replaces the row."""
    now = time.time()
    with db.transaction() as cur:
        cur.execute("SELECT digest FROM web_tokens WHERE id = ?", (ENV_TOKEN_ID,))
        row = cur.fetchone()
        if secret and row is not None and row[0] == digest(secret):
            cur.execute("UPDATE web_tokens SET revoked_at = NULL WHERE id = ?",
                        (ENV_TOKEN_ID,))
            return
        if row is not None:  # changed or unset: the old value's sessions end with it
            cur.execute("DELETE FROM web_sessions WHERE token_id = ?", (ENV_TOKEN_ID,))
            cur.execute("DELETE FROM web_tokens WHERE id = ?", (ENV_TOKEN_ID,))
        if not secret:
            return
        cur.execute("SELECT 1 FROM web_tokens WHERE digest = ?", (digest(secret),))
        if cur.fetchone() is None:  # else the variable holds a token made here: it works
            cur.execute("INSERT INTO web_tokens (id, digest, name, role, created_at, "
                        "created_by) VALUES (?, ?, 'KITT_AUTH_TOKEN', 'admin', ?, "
                        "'environment')", (ENV_TOKEN_ID, digest(secret), now))
