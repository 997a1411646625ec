"""The agent protocol (docs/agent-protocol.md): the calls a kitt-agent makes. The agent
always dials out; each call but registration carries its own token for the agent id in
the path (`@access("agent")`).

    POST /api/v1/agent/register                        enrollment token or open enrollment
    POST /api/v1/agents/{id}/heartbeat                 status in; interval, settings,
                                                       cancels and a rotated token out
    POST /api/v1/agents/{id}/claim                     long poll: 200 with a job, or 204
    POST /api/v1/agents/{id}/jobs/{job}/state          running | succeeded | failed | ...
    PUT  /api/v1/agents/{id}/jobs/{job}/log?offset=N   a log chunk at byte N
    PUT  /api/v1/agents/{id}/jobs/{job}/result         the run's metrics.json, checksummed
"""

from __future__ import annotations

import time

from aiohttp import web

from kitt_web import intake, keys
from kitt_web.api.jobs import job_dict
from kitt_web.api.params import integer, json_body, json_response, read_body
from kitt_web.auth import access
from kitt_web.errors import ApiError, bad_request
from kitt_web.influx import forward
from kitt_web.state import agents, jobs

routes = web.RouteTableDef()

MAX_RESULT = 256 * 1024 * 1024
"""As for a run submitted by a person (api/runs.py)."""
MAX_LOG_CHUNK = 1024 * 1024


def _agent(request: web.Request) -> tuple[agents.Agent, bool]:
    return request[keys.AGENT]


@routes.post("/api/v1/agent/register")
@access("open")
async def register(request: web.Request) -> web.Response:
    """`{"name", "hostname", "version", "hardware", "enrollment_token"?}` -> the agent and
    its token (this once). Without an enrollment token, and only under open enrollment,
    the agent is pending until an admin approves it."""
    body = await json_body(request)
    extra = set(body) - {"name", "hostname", "version", "hardware", "enrollment_token"}
    if extra:
        raise bad_request(sorted(extra)[0], "is not a registration field")
    secret = body.get("enrollment_token")
    if secret is not None and not isinstance(secret, str):
        raise bad_request("enrollment_token", "must be a string")
    hardware = body.get("hardware")
    if hardware is not None and not isinstance(hardware, dict):
        raise bad_request("hardware", "must be the agent's fingerprint object")
    version = body.get("version")
    if version is not None and (not isinstance(version, str) or len(version) > 100):
        raise bad_request("version", "must be a version string")
    config = request.app[keys.CONFIG]
    try:
        agent, token = await request.app[keys.THREADS].run(lambda karr: agents.register(
            karr.db, enrollment_secret=secret, open_enrollment=config.open_enrollment,
            name=body.get("name"), hostname=body.get("hostname"), address=request.remote,
            version=version, hardware=hardware))
    except agents.Refused as refused:
        raise ApiError(401 if refused.code == "bad_enrollment" else 403, refused.code,
                       refused.message, refused.hint) from None
    return json_response({"agent_id": agent.id, "name": agent.name, "state": agent.state,
                          "token": token, "heartbeat_s": config.agent_heartbeat_s}, status=201)


@routes.post("/api/v1/agents/{agent_id}/heartbeat")
@access("agent")
async def heartbeat(request: web.Request) -> web.Response:
    """The agent's status (inventory: engines, models, storage, GPUs, the jobs it runs);
    the reply: its state, the interval, its settings, jobs to stop, a new token when one
    is due, and the kitt-agent version this server offers (`kitt-agent update`)."""
    agent, stale = _agent(request)
    body = await json_body(request)
    running = body.get("running", [])
    if not isinstance(running, list) or not all(isinstance(j, str) for j in running):
        raise bad_request("running", "must list job ids")
    inventory = body.get("inventory")
    if inventory is not None and not isinstance(inventory, dict):
        raise bad_request("inventory", "must be an object")
    progress = body.get("progress")
    config = request.app[keys.CONFIG]

    def beat(karr):
        agents.seen(karr.db, agent.id, inventory=inventory, address=request.remote,
                    version=body.get("version") if isinstance(body.get("version"), str)
                    else None)
        if isinstance(progress, dict):
            for job_id, value in progress.items():
                if job_id in running and isinstance(value, dict):
                    job = jobs.get(karr.db, job_id)
                    if job is not None and job.claimed_by == agent.id and not job.final:
                        jobs.report(karr.db, agent.id, job_id, job.state, progress=value)
        token = None
        if stale:
            token = agents.reissue_rotation(karr.db, agent.id)
        elif agent.rotate_requested_at is not None:
            token = agents.issue_rotation(karr.db, agent.id)
        return token, jobs.cancels_for(karr.db, agent.id, running)

    token, cancels = await request.app[keys.THREADS].run(beat)
    settings = dict(agent.settings)
    interval = settings.pop("heartbeat_s", None) or config.agent_heartbeat_s
    from kitt_web.install import agent_version

    return json_response({"state": agent.state, "heartbeat_s": interval,
                          "lost_after_s": config.agent_lost_after_s, "settings": settings,
                          "cancel": cancels, "token": token,
                          "agent_version": agent_version(config.agent_dist)})


@routes.post("/api/v1/agents/{agent_id}/claim")
@access("agent")
async def claim(request: web.Request) -> web.Response:
    """The job this agent runs next (the same one again if it asks twice), waiting up
    to `wait` seconds for one; 204 when none came."""
    agent, _ = _agent(request)
    config = request.app[keys.CONFIG]
    wait = integer(request, "wait", int(config.claim_wait_s), 0, 60)
    notifier = request.app[keys.NOTIFIER]
    if agent.state != "active":  # pending: nothing to run; hold the poll, as for no job
        await notifier.wait(f"agent:{agent.id}", wait)
        return web.Response(status=204)
    deadline = time.monotonic() + wait
    while True:
        job = await request.app[keys.THREADS].run(lambda karr: jobs.claim(karr.db, agent.id))
        if job is not None:
            notifier.notify(f"job:{job.id}")
            return json_response({"job": job_dict(job, spec=True)})
        left = deadline - time.monotonic()
        if left <= 0 or notifier.closed:
            return web.Response(status=204)
        await notifier.wait("queue", min(left, 5.0))


async def _held_job(request: web.Request, agent: agents.Agent) -> jobs.Job:
    job_id = request.match_info["job_id"]
    job = await request.app[keys.THREADS].run(lambda karr: jobs.get(karr.db, job_id))
    if job is None or job.claimed_by != agent.id:
        raise ApiError(404, "not_found", f"agent {agent.id} holds no job {job_id!r}",
                       "report only on jobs this agent claimed")
    return job


@routes.post("/api/v1/agents/{agent_id}/jobs/{job_id}/state")
@access("agent")
async def report_state(request: web.Request) -> web.Response:
    """`{"state", "reason"?, "exit_code"?, "progress"?}`. Reporting a state the job is in
    already changes nothing; the reply is the job as the server has it (a job that
    ended here while the agent was away stays ended: the agent stops it)."""
    agent, _ = _agent(request)
    job = await _held_job(request, agent)
    body = await json_body(request)
    state = body.get("state")
    if state not in ("running", "succeeded", "failed", "cancelled"):
        raise bad_request("state", "must be running, succeeded, failed or cancelled")
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 4000):
        raise bad_request("reason", "must be a string of at most 4000 characters")
    exit_code = body.get("exit_code")
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
        raise bad_request("exit_code", "must be an integer")
    progress = body.get("progress")
    if progress is not None and not isinstance(progress, dict):
        raise bad_request("progress", "must be an object")
    try:
        updated = await request.app[keys.THREADS].run(lambda karr: jobs.report(
            karr.db, agent.id, job.id, state, reason=reason, exit_code=exit_code,
            progress=progress))
    except jobs.Conflict as conflict:
        raise ApiError(409, "conflict", conflict.message, conflict.hint) from None
    request.app[keys.NOTIFIER].notify(f"job:{job.id}")
    return json_response({"job": job_dict(updated)})


@routes.put("/api/v1/agents/{agent_id}/jobs/{job_id}/log")
@access("agent")
async def upload_log(request: web.Request) -> web.Response:
    """A chunk of the job's log starting at byte `offset` of the agent's spool. The
    reply's `offset` is how much the server holds: a chunk it has already is
    acknowledged (not stored twice); one that does not start at its end is a 409 whose
    `offset` says where to resend from."""
    agent, _ = _agent(request)
    job = await _held_job(request, agent)
    offset = integer(request, "offset", -1, 0, 2**62)
    if offset < 0:
        raise bad_request("offset", "is required", "the chunk's first byte in the spool")
    data = await read_body(request, MAX_LOG_CHUNK, "log chunk")
    try:
        held = await request.app[keys.THREADS].run(
            lambda karr: jobs.append_log(karr.db, job.id, offset, data))
    except jobs.OffsetMismatch as mismatch:
        return json_response({"error": {
            "code": "offset_mismatch", "message": f"the server holds {mismatch.offset} "
            f"bytes of this log, not {offset}", "hint": "resend from the server's offset"},
            "offset": mismatch.offset}, status=409)
    request.app[keys.NOTIFIER].notify(f"job:{job.id}")
    return json_response({"offset": held})


@routes.put("/api/v1/agents/{agent_id}/jobs/{job_id}/result")
@access("agent")
async def upload_result(request: web.Request) -> web.Response:
    """The run's lossless metrics.json, with `X-Content-SHA256` (hex). It is stored in
    KARR once: uploading it again changes nothing; another document under a stored run's
    id is a 409."""
    agent, _ = _agent(request)
    job = await _held_job(request, agent)
    data = await read_body(request, MAX_RESULT, "result")
    run = intake.read_document(data, request.headers.get("X-Content-SHA256", ""))

    def store(karr):
        stored = intake.store_once(karr.store, run)
        jobs.attach_run(karr.db, job.id, run.id)
        return stored

    added = await request.app[keys.THREADS].run(store)
    if added:
        forward(request.app, run)
    request.app[keys.NOTIFIER].notify(f"job:{job.id}")
    return json_response({"run_id": run.id, "stored": added})
