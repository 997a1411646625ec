"""The web's tables, as forward migrations (never edit a released step; append one).

    web_tokens    API and login tokens: SHA-256 digest only, the shown prefix as id
    web_sessions  browser sessions made by logging in with a token: digest only
    web_settings  settings saved by an admin (they win over environment and defaults)
    web_enrollments  enrollment tokens an admin made for agents: digest only, uses left
    web_agents    agents: their token's digest (and the one before a rotation, for a short
                  overlap), state, hardware, last heartbeat's inventory, settings
    web_jobs      the job queue (docs/agent-protocol.md): kind, validated spec, state
    web_job_logs  each job's log as the chunks its agent uploaded, keyed by byte position
    web_campaigns, web_campaign_entries  campaigns from the web and their planned entries
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
    """CREATE TABLE web_enrollments (
        id {id} PRIMARY KEY,
        digest {id} NOT NULL UNIQUE,
        name {text} NOT NULL,
        uses_allowed {int} NOT NULL,
        uses {int} NOT NULL,
        created_at {real} NOT NULL,
        created_by {text},
        expires_at {real},
        revoked_at {real}
    )""",
    """CREATE TABLE web_agents (
        id {id} PRIMARY KEY,
        name {text} NOT NULL,
        hostname {text} NOT NULL,
        address {text},
        state {text} NOT NULL,
        token_digest {id} NOT NULL UNIQUE,
        token_prefix {text} NOT NULL,
        previous_digest {id},
        previous_until {real},
        rotate_requested_at {real},
        enrolled_by {text} NOT NULL,
        created_at {real} NOT NULL,
        approved_at {real},
        approved_by {text},
        revoked_at {real},
        removed_at {real},
        last_seen_at {real},
        version {text},
        fingerprint {text},
        hardware {text},
        inventory {text},
        settings {text} NOT NULL
    )""",
    """CREATE TABLE web_jobs (
        id {id} PRIMARY KEY,
        kind {text} NOT NULL,
        spec {text} NOT NULL,
        agent_id {id},
        claimed_by {id},
        attempt {int} NOT NULL,
        state {text} NOT NULL,
        reason {text},
        created_at {real} NOT NULL,
        created_by {text},
        claimed_at {real},
        started_at {real},
        finished_at {real},
        cancel_requested_at {real},
        cancel_requested_by {text},
        exit_code {int},
        run_id {text},
        progress {text},
        log_bytes {int} NOT NULL
    )""",
    "CREATE INDEX web_jobs_state ON web_jobs (state, created_at)",
    "CREATE INDEX web_jobs_claimed_by ON web_jobs (claimed_by, state)",
    """CREATE TABLE web_job_logs (
        job_id {id} NOT NULL REFERENCES web_jobs(id) ON DELETE CASCADE,
        pos {int} NOT NULL,
        size {int} NOT NULL,
        data {text} NOT NULL,
        PRIMARY KEY (job_id, pos)
    )""",
    """CREATE TABLE web_campaigns (
        id {id} PRIMARY KEY,
        name {text} NOT NULL,
        document {text} NOT NULL,
        state {text} NOT NULL,
        created_at {real} NOT NULL,
        created_by {text},
        finished_at {real}
    )""",
    """CREATE TABLE web_campaign_entries (
        campaign_id {id} NOT NULL REFERENCES web_campaigns(id) ON DELETE CASCADE,
        position {int} NOT NULL,
        model {text} NOT NULL,
        engine {text} NOT NULL,
        agent_id {id},
        skip_reason {text},
        job_id {id} UNIQUE,
        PRIMARY KEY (campaign_id, position)
    )""",
]


def open_state(store: kitt.Store) -> kitt.Database:
    """The web's tables in `store`'s database, migrated to this version."""
    return store.database(NAMESPACE, MIGRATIONS)
