"""Jobs as people see them: queue one (operator; its spec checked now, a 400 naming the
field), list, read, cancel, and read or follow its log (an event stream that replays from
the start or from `Last-Event-ID`, so a reload loses no line)."""

from __future__ import annotations

import attrs
from aiohttp import web

from kitt_web import keys
from kitt_web.api.params import choice, integer, json_body, json_response, one
from kitt_web.auth import access, actor_of
from kitt_web.errors import ApiError, bad_request, not_found
from kitt_web.state import agents, jobs

routes = web.RouteTableDef()


def job_dict(job: jobs.Job, *, spec: bool = True) -> dict:
    found = attrs.asdict(job)
    if not spec:
        found.pop("spec")
    return found


@routes.post("/api/v1/jobs")
@access("operator")
async def submit_job(request: web.Request) -> web.Response:
    """`{"kind": "run", "agent"?: AGENT_ID, "spec": {...}}`. The spec is checked against
    the installed engines and benchmarks and, when an agent is named, against what it
    last reported (its engines, modes, models, profiles)."""
    from kitt_web import jobspec

    body = await json_body(request)
    extra = set(body) - {"kind", "agent", "spec"}
    if extra:
        raise bad_request(sorted(extra)[0], "is not a field of a job")
    kind = body.get("kind", "run")
    agent_id = body.get("agent")
    threads = request.app[keys.THREADS]
    agent = None
    if agent_id is not None:
        if not isinstance(agent_id, str):
            raise bad_request("agent", "must be an agent's id")
        agent = await threads.run(lambda karr: agents.get(karr.db, agent_id))
        if agent is None or agent.state == "removed":
            raise bad_request("agent", f"no agent {agent_id!r}", "see GET /api/v1/agents")
        if agent.state != "active":
            raise bad_request("agent", f"agent {agent.name} is {agent.state}",
                              "approve it first, or pick an active agent")
    spec = await threads.run(lambda karr: jobspec.check(kind, body.get("spec"), agent))
    by = actor_of(request).token_id
    job = await threads.run(lambda karr: jobs.submit(karr.db, kind, spec, agent_id=agent_id,
                                                     created_by=by))
    request.app[keys.NOTIFIER].notify("queue")
    return json_response({"job": job_dict(job)}, status=201)


@routes.get("/api/v1/jobs")
@access("viewer")
async def list_jobs(request: web.Request) -> web.Response:
    state = one(request, "state")
    if state is not None:
        state = choice(request, "state", jobs.STATES, "queued")
    agent_id = one(request, "agent")
    limit = integer(request, "limit", 100, 1, 1000)
    found = await request.app[keys.THREADS].run(lambda karr: jobs.list_jobs(
        karr.db, state=state, agent_id=agent_id, limit=limit))
    return json_response({"jobs": [job_dict(job, spec=False) for job in found]})


async def job_or_404(request: web.Request) -> jobs.Job:
    job_id = request.match_info["job_id"]
    job = await request.app[keys.THREADS].run(lambda karr: jobs.get(karr.db, job_id))
    if job is None:
        raise not_found(f"job {job_id!r}", "see GET /api/v1/jobs")
    return job


@routes.get("/api/v1/jobs/{job_id}")
@access("viewer")
async def get_job(request: web.Request) -> web.Response:
    return json_response({"job": job_dict(await job_or_404(request))})


@routes.post("/api/v1/jobs/{job_id}/cancel")
@access("operator")
async def cancel_job(request: web.Request) -> web.Response:
    """A queued job is cancelled at once; a running one is stopped by its agent (SIGTERM,
    grace, SIGKILL) and reported `cancelled`. A finished job is a 409."""
    job = await job_or_404(request)
    by = actor_of(request).token_id
    try:
        updated = await request.app[keys.THREADS].run(
            lambda karr: jobs.cancel(karr.db, job.id, by))
    except jobs.Conflict as conflict:
        raise ApiError(409, "conflict", conflict.message, conflict.hint) from None
    request.app[keys.NOTIFIER].notify(f"job:{job.id}")
    return json_response({"job": job_dict(updated)})


@routes.get("/api/v1/jobs/{job_id}/log")
@access("viewer")
async def get_log(request: web.Request) -> web.StreamResponse:
    """The log as text from byte `offset`; `text/event-stream` (Accept) follows it live:
    each event's id is the byte where it ends (send it back as `Last-Event-ID`), and an
    `end` event comes when the job has finished and its whole log has been sent."""
    job = await job_or_404(request)
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _follow(request, job)
    offset = integer(request, "offset", 0, 0, 2**62)
    chunks = await request.app[keys.THREADS].run(
        lambda karr: jobs.log_chunks(karr.db, job.id, offset, limit=100_000))
    text = "".join(_from(offset, pos, data) for pos, _, data in chunks)
    return web.Response(text=text, content_type="text/plain",
                        headers={"X-Log-Bytes": str(job.log_bytes)})


def _from(offset: int, pos: int, data: str) -> str:
    """A chunk's text from byte `offset` (chunks may start before it)."""
    if pos >= offset:
        return data
    return data.encode()[offset - pos:].decode("utf-8", errors="replace")


async def _follow(request: web.Request, job: jobs.Job) -> web.StreamResponse:
    last = request.headers.get("Last-Event-ID", "") or one(request, "offset") or "0"
    if not last.isdigit():
        raise bad_request("Last-Event-ID", "must be a byte offset this stream sent")
    offset = int(last)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    from kitt_web.app import apply_headers

    apply_headers(request, response)
    await response.prepare(request)
    threads, notifier = request.app[keys.THREADS], request.app[keys.NOTIFIER]
    while True:
        def read(karr, after=offset):
            return jobs.get(karr.db, job.id), jobs.log_chunks(karr.db, job.id, after)

        current, chunks = await threads.run(read)
        for pos, size, data in chunks:
            text = _from(offset, pos, data)
            lines = "".join(f"data: {line}\n" for line in text.split("\n"))
            await response.write(f"id: {pos + size}\nevent: log\n{lines}\n".encode())
            offset = pos + size
        if chunks:
            continue  # there may be more than one page
        state = f"data: {current.state}\n"
        if current.final and offset >= current.log_bytes:
            await response.write(f"id: {offset}\nevent: end\n{state}\n".encode())
            break
        if notifier.closed:
            break  # the server is stopping: the browser reconnects with Last-Event-ID
        if not await notifier.wait(f"job:{job.id}", 15.0):
            await response.write(b": keep-alive\n\n")
    await response.write_eof()
    return response
