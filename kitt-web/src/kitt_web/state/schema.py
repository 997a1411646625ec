"""The web's tables, as forward migrations (never edit a released step; append one).

    web_tokens    API and login tokens: SHA-256 digest only, the shown prefix as id
    web_sessions  browser sessions made by logging in with a token: digest only
    web_settings  settings saved by an admin (they win over environment and defaults)
"""

from __future__ import annotations

import kitt

NAMESPACE = "web"

MIGRATIONS: list[kitt.Migration] = [
    """CREATE TABLE web_tokens (
        id {id} PRIMARY KEY,
        digest {id} NOT NULL UNIQUE,
        name {text} NOT NULL,
        role {text} NOT NULL,
        created_at {real} NOT NULL,
        created_by {text},
        expires_at {real},
        revoked_at {real},
        last_used_at {real}
    )""",
    """CREATE TABLE web_sessions (
        digest {id} PRIMARY KEY,
        token_id {id} NOT NULL REFERENCES web_tokens(id) ON DELETE CASCADE,
        csrf {text} NOT NULL,
        created_at {real} NOT NULL,
        expires_at {real} NOT NULL,
        last_seen_at {real} NOT NULL
    )""",
    "CREATE INDEX web_sessions_token ON web_sessions (token_id)",
    """CREATE TABLE web_settings (
        key {id} PRIMARY KEY,
        value {text} NOT NULL,
        updated_at {real} NOT NULL,
        updated_by {text}
    )""",
]


def open_state(store: kitt.Store) -> kitt.Database:
    """The web's tables in `store`'s database, migrated to this version."""
    return store.database(NAMESPACE, MIGRATIONS)
