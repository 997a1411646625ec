"""Agents and the enrollment tokens that admit them (docs/agent-protocol.md).

Secrets are 256 random bits and kept only as SHA-256 digests, like the web's tokens:

    kenr_<43 characters>   an enrollment token: admits N agents until it expires
    kagt_<43 characters>   an agent's own token: sent on every call the agent makes

An agent's state is `pending` (registered under open enrollment, not yet approved),
`active`, `revoked` or `removed` (its history stays). What the pages show (online, busy,
lost) is derived from an active agent's last heartbeat and jobs (`status`).

Rotation never stores a secret: an admin asks for one, and the next heartbeat makes the
new token and returns it. The old one keeps working for `ROTATION_OVERLAP_S`, so a reply
lost on the way costs nothing: the agent calls again with the old token and gets a fresh
new one.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

import attrs

import kitt
from kitt_web.state.tokens import digest

ENROLL_PREFIX = "kenr_"
AGENT_PREFIX = "kagt_"
ROTATION_OVERLAP_S = 600.0
STATES = ("pending", "active", "revoked", "removed")
DEFAULT_SETTINGS: dict[str, Any] = {
    "model_dir": None,  # None: the agent's own (kitt-agent init --models, ~/.kitt/models)
    "heartbeat_s": None,  # None: the server's interval
    # The KITT image docker-mode jobs run in: None, kitt:VERSION when the agent has it;
    # "": never (the agent's own kitt).
    "kitt_image": None,
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_AGENT_COLUMNS = ("id", "name", "hostname", "address", "state", "token_prefix",
                  "enrolled_by", "created_at", "approved_at", "approved_by", "revoked_at",
                  "removed_at", "last_seen_at", "version", "fingerprint", "hardware",
                  "inventory", "settings", "rotate_requested_at")


class Refused(Exception):
    """An agent's call that its credentials do not allow: `code` says why (docs)."""

    def __init__(self, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


@attrs.frozen
class Enrollment:
    id: str
    name: str
    uses_allowed: int
    uses: int
    created_at: float
    created_by: str | None = None
    expires_at: float | None = None
    revoked_at: float | None = None

    def state(self, now: float | None = None) -> str:
        """`active`, `used`, `expired` or `revoked`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or time.time()):
            return "expired"
        return "used" if self.uses >= self.uses_allowed else "active"


@attrs.frozen
class Agent:
    id: str
    name: str
    hostname: str
    address: str | None
    state: str
    token_prefix: str
    enrolled_by: str
    created_at: float
    approved_at: float | None
    approved_by: str | None
    revoked_at: float | None
    removed_at: float | None
    last_seen_at: float | None
    version: str | None
    fingerprint: str | None
    hardware: dict | None
    inventory: dict | None
    settings: dict
    rotate_requested_at: float | None

    def status(self, *, busy: bool, lost_after_s: float, grace_from: float = 0.0,
               now: float | None = None) -> str:
        """What an admin sees: pending, revoked, removed, lost, busy or online. Silence
        counts from the later of the last heartbeat and `grace_from` (the server's start:
        an agent is not lost because the server was down)."""
        if self.state != "active":
            return self.state
        seen = max(self.last_seen_at or self.created_at, grace_from)
        if (now or time.time()) - seen > lost_after_s:
            return "lost"
        return "busy" if busy else "online"


def _secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def check_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise kitt.BadInput(f"{field}: bad agent name {name!r}",
                            hint="1 to 63 letters, digits, '.', '_' or '-', e.g. gpu-01")
    return name


# -- enrollment tokens ------------------------------------------------------------------
_ENROLL_COLUMNS = ("id", "name", "uses_allowed", "uses", "created_at", "created_by",
                   "expires_at", "revoked_at")


def create_enrollment(db: kitt.Database, name: str, *, uses: int = 1,
                      expires_in: float | None = 24 * 3600.0, created_by: str | None = None
                      ) -> tuple[Enrollment, str]:
    """An enrollment token admitting `uses` agents, and its secret (shown once)."""
    if isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= 1000:
        raise kitt.BadInput(f"uses: expected 1 to 1000, got {uses!r}",
                            hint="how many agents this token may enroll")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise kitt.BadInput(f"name: bad enrollment name {name!r}", hint="e.g. rack-3")
    secret = _secret(ENROLL_PREFIX)
    now = time.time()
    found = Enrollment(secret[:len(ENROLL_PREFIX) + 8], name.strip(), uses, 0, now,
                       created_by, None if expires_in is None else now + expires_in)
    with db.transaction() as cur:
        cur.execute("INSERT INTO web_enrollments (id, digest, name, uses_allowed, uses, "
                    "created_at, created_by, expires_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                    (found.id, digest(secret), found.name, uses, now, created_by,
                     found.expires_at))
    return found, secret


def list_enrollments(db: kitt.Database) -> list[Enrollment]:
    return [Enrollment(*row) for row in db.query(
        f"SELECT {', '.join(_ENROLL_COLUMNS)} FROM web_enrollments ORDER BY created_at")]


def revoke_enrollment(db: kitt.Database, enrollment_id: str) -> Enrollment | None:
    with db.transaction() as cur:
        cur.execute("UPDATE web_enrollments SET revoked_at = ? WHERE id = ? AND "
                    "revoked_at IS NULL", (time.time(), enrollment_id))
    rows = db.query(f"SELECT {', '.join(_ENROLL_COLUMNS)} FROM web_enrollments WHERE id = ?",
                    (enrollment_id,))
    return Enrollment(*rows[0]) if rows else None


# -- agents -----------------------------------------------------------------------------
def _agent(row) -> Agent:
    values = dict(zip(_AGENT_COLUMNS, row, strict=True))
    for key in ("hardware", "inventory", "settings"):
        values[key] = json.loads(values[key]) if values[key] else None
    values["settings"] = {**DEFAULT_SETTINGS, **(values["settings"] or {})}
    return Agent(**values)


def register(db: kitt.Database, *, enrollment_secret: str | None, open_enrollment: bool,
             name: str, hostname: str, address: str | None, version: str | None,
             hardware: dict | None) -> tuple[Agent, str]:
    """A new agent and its token (returned once). With a valid enrollment token it is
    active at once; without one, and only under open enrollment, it is pending."""
    check_name(name)
    if not isinstance(hostname, str) or not hostname or len(hostname) > 253:
        raise kitt.BadInput("hostname: expected the agent host's name")
    now = time.time()
    secret = _secret(AGENT_PREFIX)
    with db.transaction() as cur:
        if enrollment_secret is not None:
            cur.execute(f"SELECT {', '.join(_ENROLL_COLUMNS)} FROM web_enrollments "
                        "WHERE digest = ?", (digest(enrollment_secret),))
            row = cur.fetchone()
            enrollment = Enrollment(*row) if row else None
            if enrollment is None or enrollment.state(now) != "active":
                state = "unknown" if enrollment is None else enrollment.state(now)
                raise Refused("bad_enrollment", f"the enrollment token is {state}",
                              "ask an admin for a new one (Agents > Add agent, or "
                              "`kitt web agent enroll`)")
            cur.execute("UPDATE web_enrollments SET uses = uses + 1 WHERE id = ?",
                        (enrollment.id,))
            state, enrolled_by = "active", enrollment.id
        elif open_enrollment:
            state, enrolled_by = "pending", "open"
        else:
            raise Refused("enrollment_required", "this server needs an enrollment token",
                          "ask an admin for one (Agents > Add agent) and pass it as "
                          "KITT_ENROLL_TOKEN")
        cur.execute("SELECT 1 FROM web_agents WHERE name = ? AND state IN "
                    "('pending', 'active')", (name,))
        if cur.fetchone() is not None:
            raise kitt.BadInput(f"name: an agent named {name!r} is already enrolled",
                                hint="pick another --name, or have an admin remove the "
                                     "old agent first")
        agent_id = "agt_" + secrets.token_hex(6)
        fingerprint = (hardware or {}).get("fingerprint") if isinstance(hardware, dict) else None
        cur.execute(
            "INSERT INTO web_agents (id, name, hostname, address, state, token_digest, "
            "token_prefix, enrolled_by, created_at, approved_at, last_seen_at, version, "
            "fingerprint, hardware, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
            (agent_id, name, hostname, address, state, digest(secret),
             secret[:len(AGENT_PREFIX) + 8], enrolled_by, now,
             now if state == "active" else None, now, version,
             fingerprint if isinstance(fingerprint, str) else None,
             json.dumps(hardware) if hardware is not None else None, "{}"))
    found = get(db, agent_id)
    assert found is not None
    return found, secret


def get(db: kitt.Database, agent_id: str) -> Agent | None:
    rows = db.query(f"SELECT {', '.join(_AGENT_COLUMNS)} FROM web_agents WHERE id = ?",
                    (agent_id,))
    return _agent(rows[0]) if rows else None


def list_all(db: kitt.Database, *, removed: bool = False) -> list[Agent]:
    where = "" if removed else " WHERE state <> 'removed'"
    return [_agent(row) for row in db.query(
        f"SELECT {', '.join(_AGENT_COLUMNS)} FROM web_agents{where} ORDER BY name, id")]


def authenticate(db: kitt.Database, agent_id: str, secret: str | None,
                 now: float | None = None) -> tuple[Agent, bool]:
    """The agent this call comes from, and whether it used its previous token (a
    rotation reply it never got). Refused says why not; `unknown_agent` means the server
    has no such agent (removed for good, or its database was reset): re-enroll."""
    now = now or time.time()
    if not secret:
        raise Refused("unauthorized", "this call needs the agent's token",
                      "send `Authorization: Bearer kagt_...` (from agent.yaml)")
    rows = db.query("SELECT token_digest, previous_digest, previous_until, state FROM "
                    "web_agents WHERE id = ?", (agent_id,))
    if not rows:
        raise Refused("unknown_agent", f"this server has no agent {agent_id}",
                      "enroll again: kitt-agent init --server URL (the spool is kept)")
    current, previous, until, state = rows[0]
    given = digest(secret)
    stale = previous is not None and until is not None and until > now and given == previous
    if given != current and not stale:
        raise Refused("bad_token", f"wrong token for agent {agent_id}",
                      "enroll again: kitt-agent init --server URL")
    if state in ("revoked", "removed"):
        raise Refused(state, f"agent {agent_id} was {state} by an admin",
                      "enroll again if this host should run jobs: kitt-agent init")
    if given == current and previous is not None:  # it switched: the old one ends now
        with db.transaction() as cur:
            cur.execute("UPDATE web_agents SET previous_digest = NULL, previous_until = NULL "
                        "WHERE id = ? AND token_digest = ?", (agent_id, current))
    agent = get(db, agent_id)
    assert agent is not None
    return agent, stale


def seen(db: kitt.Database, agent_id: str, *, inventory: dict | None, address: str | None,
         version: str | None, now: float | None = None) -> None:
    with db.transaction() as cur:
        if inventory is None:
            cur.execute("UPDATE web_agents SET last_seen_at = ? WHERE id = ?",
                        (now or time.time(), agent_id))
        else:
            cur.execute("UPDATE web_agents SET last_seen_at = ?, inventory = ?, address = ?, "
                        "version = COALESCE(?, version) WHERE id = ?",
                        (now or time.time(), json.dumps(inventory), address, version,
                         agent_id))


def issue_rotation(db: kitt.Database, agent_id: str, now: float | None = None) -> str:
    """Make the agent's next token now (a heartbeat is delivering it); the current one
    stays valid for the overlap."""
    now = now or time.time()
    secret = _secret(AGENT_PREFIX)
    with db.transaction() as cur:
        cur.execute("UPDATE web_agents SET previous_digest = token_digest, "
                    "previous_until = ?, token_digest = ?, token_prefix = ?, "
                    "rotate_requested_at = NULL WHERE id = ?",
                    (now + ROTATION_OVERLAP_S, digest(secret),
                     secret[:len(AGENT_PREFIX) + 8], agent_id))
    return secret


def reissue_rotation(db: kitt.Database, agent_id: str, now: float | None = None) -> str:
    """The agent called with its previous token: the reply with its new one was lost.
    Make another new one; the previous token's overlap is kept, not extended."""
    secret = _secret(AGENT_PREFIX)
    with db.transaction() as cur:
        cur.execute("UPDATE web_agents SET token_digest = ?, token_prefix = ? WHERE id = ?",
                    (digest(secret), secret[:len(AGENT_PREFIX) + 8], agent_id))
    return secret


def request_rotation(db: kitt.Database, agent_id: str) -> None:
    with db.transaction() as cur:
        cur.execute("UPDATE web_agents SET rotate_requested_at = ? WHERE id = ? AND "
                    "state = 'active'", (time.time(), agent_id))


def set_state(db: kitt.Database, agent_id: str, state: str, by: str | None,
              now: float | None = None) -> Agent:
    """approve (pending -> active), revoke, remove (keeps its history and jobs)."""
    now = now or time.time()
    column = {"active": "approved_at", "revoked": "revoked_at", "removed": "removed_at"}[state]
    with db.transaction() as cur:
        if state == "active":
            cur.execute("UPDATE web_agents SET state = 'active', approved_at = ?, "
                        "approved_by = ? WHERE id = ? AND state = 'pending'",
                        (now, by, agent_id))
        else:
            cur.execute(f"UPDATE web_agents SET state = ?, {column} = ?, "
                        "previous_digest = NULL WHERE id = ? AND state <> 'removed'",
                        (state, now, agent_id))
    agent = get(db, agent_id)
    assert agent is not None
    return agent


def update_settings(db: kitt.Database, agent_id: str, changes: dict[str, Any]) -> Agent:
    agent = get(db, agent_id)
    assert agent is not None
    merged = {**agent.settings, **changes}
    with db.transaction() as cur:
        cur.execute("UPDATE web_agents SET settings = ? WHERE id = ?",
                    (json.dumps(merged), agent_id))
    updated = get(db, agent_id)
    assert updated is not None
    return updated
