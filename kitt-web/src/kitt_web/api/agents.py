"""Agents as people manage them: enrollment tokens (admin), the agents list and detail
(viewer), approve, reject, revoke, remove, token rotation and settings (admin)."""

from __future__ import annotations

import re

import attrs
from aiohttp import web

from kitt_web import keys
from kitt_web.api.params import json_body, json_response
from kitt_web.auth import access, actor_of
from kitt_web.errors import ApiError, bad_request, not_found
from kitt_web.state import agents, jobs, tokens

routes = web.RouteTableDef()
# A Docker image reference: [registry[:port]/]name[/name...][:tag][@sha256:digest].
IMAGE_REF = re.compile(r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
                       r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                       r"(?:@sha256:[0-9a-f]{64})?")


def enrollment_dict(enrollment: agents.Enrollment) -> dict:
    return {**attrs.asdict(enrollment), "state": enrollment.state()}


def agent_dict(agent: agents.Agent, held: list[jobs.Job], app: web.Application, *,
               detail: bool = False) -> dict:
    config = app[keys.CONFIG]
    found = attrs.asdict(agent)
    found.pop("rotate_requested_at")
    if not detail:
        found.pop("hardware")
    found["status"] = agent.status(busy=bool(held), lost_after_s=config.agent_lost_after_s,
                                   grace_from=app[keys.STARTED_AT])
    found["current_job"] = held[0].id if held else None
    found["rotation_pending"] = agent.rotate_requested_at is not None
    return found


@routes.get("/api/v1/enrollments")
@access("admin")
async def list_enrollments(request: web.Request) -> web.Response:
    found = await request.app[keys.THREADS].run(lambda karr: agents.list_enrollments(karr.db))
    return json_response({"enrollments": [enrollment_dict(e) for e in found]})


@routes.post("/api/v1/enrollments")
@access("admin")
async def create_enrollment(request: web.Request) -> web.Response:
    """`{"name", "uses"?: 1, "expires_in"?: "24h"}` -> the enrollment token, this once,
    and the install one-liner that carries it."""
    body = await json_body(request)
    extra = set(body) - {"name", "uses", "expires_in"}
    if extra:
        raise bad_request(sorted(extra)[0], "is not a field of an enrollment token")
    expires = body.get("expires_in", "24h")
    if not isinstance(expires, str):
        raise bad_request("expires_in", "must be a duration like 24h")
    seconds = tokens.parse_duration(expires)
    by = actor_of(request).token_id
    enrollment, secret = await request.app[keys.THREADS].run(
        lambda karr: agents.create_enrollment(karr.db, body.get("name", "agents"),
                                              uses=body.get("uses", 1), expires_in=seconds,
                                              created_by=by))
    from kitt_web.install import one_liner

    return json_response({"enrollment": enrollment_dict(enrollment), "secret": secret,
                          "command": enroll_command(request, secret),
                          "install": one_liner(request, secret, server_pin(request.app))},
                         status=201)


def server_pin(app: web.Application) -> str | None:
    """`sha256//BASE64` of the server certificate's public key (what curl's
    --pinnedpubkey and `kitt-agent init --pin` take), or None over plain HTTP."""
    from kitt_web.tls import spki_sha256

    tls = app[keys.CONFIG].tls
    return f"sha256//{spki_sha256(tls.cert)}" if tls is not None else None


def enroll_command(request: web.Request, secret: str) -> str:
    """What to run on the GPU host: the token travels in the environment, never as an
    argument (process lists show arguments to every user)."""
    import shlex

    from kitt_web.install import server_url

    parts = ["kitt-agent", "init", "--server", server_url(request)]
    pin = server_pin(request.app)
    if pin:
        parts += ["--pin", pin]
    return f"KITT_ENROLL_TOKEN={shlex.quote(secret)} {shlex.join(parts)}"


@routes.delete("/api/v1/enrollments/{enrollment_id}")
@access("admin")
async def revoke_enrollment(request: web.Request) -> web.Response:
    enrollment_id = request.match_info["enrollment_id"]
    found = await request.app[keys.THREADS].run(
        lambda karr: agents.revoke_enrollment(karr.db, enrollment_id))
    if found is None:
        raise not_found(f"enrollment token {enrollment_id!r}")
    return json_response({"enrollment": enrollment_dict(found)})


@routes.get("/api/v1/agents")
@access("viewer")
async def list_agents(request: web.Request) -> web.Response:
    def read(karr):
        return [(agent, jobs.held_by(karr.db, agent.id)) for agent in agents.list_all(karr.db)]

    found = await request.app[keys.THREADS].run(read)
    return json_response({"agents": [agent_dict(a, held, request.app) for a, held in found]})


async def _agent_or_404(request: web.Request) -> agents.Agent:
    agent_id = request.match_info["agent_id"]
    agent = await request.app[keys.THREADS].run(lambda karr: agents.get(karr.db, agent_id))
    if agent is None:
        raise not_found(f"agent {agent_id!r}", "see GET /api/v1/agents")
    return agent


async def _detail(request: web.Request, agent_id: str) -> web.Response:
    def read(karr):
        agent = agents.get(karr.db, agent_id)
        return agent, jobs.held_by(karr.db, agent_id), jobs.list_jobs(
            karr.db, agent_id=agent_id, limit=20)

    agent, held, recent = await request.app[keys.THREADS].run(read)
    from kitt_web.api.jobs import job_dict

    return json_response({"agent": agent_dict(agent, held, request.app, detail=True),
                          "jobs": [job_dict(job) for job in recent]})


@routes.get("/api/v1/agents/{agent_id}")
@access("viewer")
async def get_agent(request: web.Request) -> web.Response:
    agent = await _agent_or_404(request)
    return await _detail(request, agent.id)


async def _change(request: web.Request, state: str, allowed_from: tuple[str, ...]
                  ) -> web.Response:
    agent = await _agent_or_404(request)
    if agent.state not in allowed_from:
        raise ApiError(409, "conflict", f"agent {agent.id} is {agent.state}",
                       f"only a {' or '.join(allowed_from)} agent can be {state}")
    by = actor_of(request).token_id

    def change(karr):
        agents.set_state(karr.db, agent.id, state, by)
        if state != "active":  # its jobs end with it
            return jobs.end_held(karr.db, agent.id, "cancelled", f"agent {agent.name} was "
                                 f"{state} by {by}")
        return []

    for job_id in await request.app[keys.THREADS].run(change):
        request.app[keys.NOTIFIER].notify(f"job:{job_id}")
    request.app[keys.NOTIFIER].notify(f"agent:{agent.id}")  # a pending agent's poll ends
    return await _detail(request, agent.id)


@routes.post("/api/v1/agents/{agent_id}/approve")
@access("admin")
async def approve_agent(request: web.Request) -> web.Response:
    return await _change(request, "active", ("pending",))


@routes.post("/api/v1/agents/{agent_id}/reject")
@access("admin")
async def reject_agent(request: web.Request) -> web.Response:
    """A pending agent is turned away (its token stops working); its row stays."""
    return await _change(request, "removed", ("pending",))


@routes.post("/api/v1/agents/{agent_id}/revoke")
@access("admin")
async def revoke_agent(request: web.Request) -> web.Response:
    """Its token stops working at once: the agent stops at its next call."""
    return await _change(request, "revoked", ("pending", "active"))


@routes.delete("/api/v1/agents/{agent_id}")
@access("admin")
async def remove_agent(request: web.Request) -> web.Response:
    """Off the list, token dead; its jobs and runs stay (history)."""
    return await _change(request, "removed", ("pending", "active", "revoked"))


@routes.post("/api/v1/agents/{agent_id}/rotate")
@access("admin")
async def rotate_agent_token(request: web.Request) -> web.Response:
    """The agent's next heartbeat reply carries a new token; the old one works for a
    short overlap (docs/agent-protocol.md)."""
    agent = await _agent_or_404(request)
    if agent.state != "active":
        raise ApiError(409, "conflict", f"agent {agent.id} is {agent.state}",
                       "only an active agent's token can be rotated")
    await request.app[keys.THREADS].run(lambda karr: agents.request_rotation(karr.db, agent.id))
    return await _detail(request, agent.id)


def check_settings(body: dict) -> dict:
    changes = {}
    for key, value in body.items():
        if key not in agents.DEFAULT_SETTINGS:
            raise bad_request(key, "is not an agent setting",
                              f"settings: {', '.join(agents.DEFAULT_SETTINGS)}")
        if key == "model_dir" and value is not None and (
                not isinstance(value, str) or not value.startswith("/") or "\x00" in value):
            raise bad_request(key, "must be an absolute path on the agent, or null")
        if key == "heartbeat_s" and value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
                or not 1 <= value <= 3600):
            raise bad_request(key, "must be 1 to 3600 seconds, or null for the server's")
        if key == "kitt_image" and value is not None and (
                not isinstance(value, str) or (value and not IMAGE_REF.fullmatch(value))):
            raise bad_request(key, "must be an image reference (kitt:0.1.0, "
                                   "registry.lab/kitt:1), \"\" for never, or null")
        changes[key] = value
    if not changes:
        raise bad_request("body", "names no setting")
    return changes


@routes.patch("/api/v1/agents/{agent_id}/settings")
@access("admin")
async def patch_agent_settings(request: web.Request) -> web.Response:
    """They reach the agent with its next heartbeat."""
    agent = await _agent_or_404(request)
    changes = check_settings(await json_body(request))
    await request.app[keys.THREADS].run(
        lambda karr: agents.update_settings(karr.db, agent.id, changes))
    return await _detail(request, agent.id)
