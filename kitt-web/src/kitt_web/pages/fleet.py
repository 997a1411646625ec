"""The fleet's pages, each over the same state functions as its JSON twin:

    /agents            agents, pending approvals, "Add agent"   (/api/v1/agents)
    /agents/{id}       hardware, engines, models, settings, token (/api/v1/agents/{id})
    /jobs              the queue                                 (/api/v1/jobs)
    /jobs/new          quick test: agent -> engine -> model -> suite or benchmark
    /jobs/{id}         status, spec, live log, cancel, the run   (/api/v1/jobs/{id})
    /campaigns         campaigns; /campaigns/new the wizard; /campaigns/{id} progress
                       per entry, each entry's job (its log) and run; cancel

The quick test form narrows itself by GET (each choice is in the query string, so a
half-filled form is a permalink) and queues with POST through the same spec check as
POST /api/v1/jobs.
"""

from __future__ import annotations

import json

from aiohttp import web

import kitt
from kitt_web import jobspec, keys
from kitt_web.api import agents as agents_api
from kitt_web.api.params import one
from kitt_web.auth import access, actor_of
from kitt_web.errors import ApiError, not_found
from kitt_web.pages.render import page
from kitt_web.state import agents, jobs, tokens

routes = web.RouteTableDef()


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _listing(app: web.Application):
    def read(karr):
        return [agents_api.agent_dict(a, jobs.held_by(karr.db, a.id), app)
                for a in agents.list_all(karr.db)]
    return read


@routes.get("/agents")
@access("viewer")
async def agents_page(request: web.Request) -> web.Response:
    found = await request.app[keys.THREADS].run(_listing(request.app))
    return page(request, "agents.html", agents=found, enrolled=None)


@routes.post("/agents/enroll")
@access("admin")
async def enroll(request: web.Request) -> web.Response:
    """"Add agent": an enrollment token and the exact command that uses it, shown once."""
    form = await request.post()
    uses_text, expires = str(form.get("uses", "1")), str(form.get("expires", "24h"))
    by = actor_of(request).token_id
    problem = enrolled = None
    try:
        uses = int(uses_text) if uses_text.isdigit() else -1
        seconds = tokens.parse_duration(expires)
        enrollment, secret = await request.app[keys.THREADS].run(
            lambda karr: agents.create_enrollment(karr.db, str(form.get("name") or "agents"),
                                                  uses=uses, expires_in=seconds, created_by=by))
        from kitt_web.install import one_liner

        enrolled = {"enrollment": enrollment,
                    "command": agents_api.enroll_command(request, secret),
                    "install": one_liner(request, secret, agents_api.server_pin(request.app))}
    except kitt.BadInput as error:
        problem = str(error)
    found = await request.app[keys.THREADS].run(_listing(request.app))
    return page(request, "agents.html", status=400 if problem else 201, agents=found,
                enrolled=enrolled, problem=problem)


async def _agent_detail(request: web.Request) -> dict:
    agent_id = request.match_info["agent_id"]

    def read(karr):
        agent = agents.get(karr.db, agent_id)
        if agent is None:
            return None
        return {"agent": agents_api.agent_dict(agent, jobs.held_by(karr.db, agent_id),
                                               request.app, detail=True),
                "jobs": jobs.list_jobs(karr.db, agent_id=agent_id, limit=20)}

    found = await request.app[keys.THREADS].run(read)
    if found is None:
        raise not_found(f"agent {agent_id!r}", "see the agents page")
    return found


@routes.get("/agents/{agent_id}")
@access("viewer")
async def agent_page(request: web.Request) -> web.Response:
    found = await _agent_detail(request)
    return page(request, "agent.html", **found, problem=None,
                hardware_json=json.dumps(found["agent"]["hardware"], indent=2))


ACTIONS = {"approve": agents_api.approve_agent, "reject": agents_api.reject_agent,
           "revoke": agents_api.revoke_agent, "remove": agents_api.remove_agent,
           "rotate": agents_api.rotate_agent_token}


@routes.post("/agents/{agent_id}/{action:approve|reject|revoke|remove|rotate}")
@access("admin")
async def agent_action(request: web.Request) -> web.Response:
    """The same handlers as the API (one way to change an agent); back to its page."""
    await ACTIONS[request.match_info["action"]](request)
    target = ("/agents" if request.match_info["action"] in ("reject", "remove")
              else f"/agents/{request.match_info['agent_id']}")
    return _see_other(target)


@routes.post("/agents/{agent_id}/settings")
@access("admin")
async def agent_settings(request: web.Request) -> web.Response:
    form = await request.post()
    changes: dict = {"model_dir": str(form.get("model_dir", "")).strip() or None}
    interval = str(form.get("heartbeat_s", "")).strip()
    image = str(form.get("kitt_image", "auto")).strip()
    changes["kitt_image"] = None if image in ("", "auto") else ("" if image == "none" else image)
    try:
        changes["heartbeat_s"] = float(interval) if interval else None
        checked = agents_api.check_settings(changes)
    except (ValueError, ApiError) as error:
        found = await _agent_detail(request)
        return page(request, "agent.html", status=400, **found, problem=str(error),
                    hardware_json=json.dumps(found["agent"]["hardware"], indent=2))
    agent_id = request.match_info["agent_id"]
    await request.app[keys.THREADS].run(
        lambda karr: agents.update_settings(karr.db, agent_id, checked))
    return _see_other(f"/agents/{agent_id}")


@routes.get("/jobs")
@access("viewer")
async def jobs_page(request: web.Request) -> web.Response:
    state = one(request, "state")
    found = await request.app[keys.THREADS].run(
        lambda karr: jobs.list_jobs(karr.db, state=state if state in jobs.STATES else None))
    return page(request, "jobs.html", jobs=found, state=state or "", states=jobs.STATES)


def _choices(agent: agents.Agent | None, engine_name: str | None) -> dict:
    """What the quick test form offers for the agent chosen: its engines (each with why
    it cannot run here), its models in the engine's formats, the suites and benchmarks."""
    installed = kitt.installed_engines()
    reported = ((agent.inventory or {}).get("engines") or {}) if agent else {}
    engines = []
    for name, engine in sorted(installed.items()):
        found = reported.get(name)
        if found is None:
            why = "not installed on this agent"
        elif not found.get("modes"):
            why = "; ".join(f"{m}: {r}" for m, r in (found.get("unavailable") or {}).items())
        else:
            why = None
        engines.append({"name": name, "modes": (found or {}).get("modes", []), "why": why,
                        "formats": list(engine.formats)})
    engine = installed.get(engine_name) if engine_name else None
    models = [m for m in ((agent.inventory or {}).get("models") or [] if agent else [])
              if engine is None or m.get("format") in engine.formats]
    return {"engines": engines, "models": models,
            "suites": sorted(s["name"] for s in kitt.suite_catalogue()),
            "benchmarks": sorted(kitt.installed_benchmarks()),
            "profiles": sorted((agent.inventory or {}).get("profiles") or []) if agent else []}


async def _quick_form(request: web.Request, values: dict, *, status: int = 200,
                      problem: str | None = None) -> web.Response:
    def read(karr):
        active = [a for a in agents.list_all(karr.db) if a.state == "active"]
        chosen = next((a for a in active if a.id == values.get("agent")), None)
        return active, chosen

    active, chosen = await request.app[keys.THREADS].run(read)
    choices = _choices(chosen, values.get("engine") or None)
    return page(request, "quick_test.html", status=status, agents=active, chosen=chosen,
                values=values, problem=problem, **choices)


FORM_FIELDS = ("agent", "engine", "model", "mode", "suite", "benchmark", "params", "profile",
               "runs")


@routes.get("/jobs/new")
@access("operator")
async def quick_test(request: web.Request) -> web.Response:
    values = {field: request.query.get(field, "") for field in FORM_FIELDS}
    return await _quick_form(request, values)


@routes.post("/jobs/new")
@access("operator")
async def quick_test_launch(request: web.Request) -> web.Response:
    form = await request.post()
    values = {field: str(form.get(field, "")).strip() for field in FORM_FIELDS}
    try:
        spec: dict = {"model": values["model"] or None, "engine": values["engine"] or None,
                      "mode": values["mode"] or None, "profile": values["profile"] or None}
        if values["benchmark"]:
            spec["benchmark"] = values["benchmark"]
            spec["params"] = json.loads(values["params"]) if values["params"] else {}
        else:
            spec["suite"] = values["suite"] or "quick"
        if values["runs"]:
            spec["runs"] = int(values["runs"]) if values["runs"].isdigit() else values["runs"]
        agent = await request.app[keys.THREADS].run(
            lambda karr: agents.get(karr.db, values["agent"]))
        if agent is None or agent.state != "active":
            raise ApiError(400, "bad_request", "agent: pick an active agent")
        checked = await request.app[keys.THREADS].run(
            lambda karr: jobspec.check("run", spec, agent))
    except ValueError as error:  # params that are not JSON
        return await _quick_form(request, values, status=400,
                                 problem=f"params: not JSON: {error}")
    except ApiError as error:
        return await _quick_form(request, values, status=400,
                                 problem=error.message + (f" ({error.hint})" if error.hint
                                                          else ""))
    by = actor_of(request).token_id
    job = await request.app[keys.THREADS].run(lambda karr: jobs.submit(
        karr.db, "run", checked, agent_id=agent.id, created_by=by))
    request.app[keys.NOTIFIER].notify("queue")
    return _see_other(f"/jobs/{job.id}")


@routes.get("/jobs/{job_id}")
@access("viewer")
async def job_page(request: web.Request) -> web.Response:
    from kitt_web.api.jobs import job_or_404

    job = await job_or_404(request)
    agent = await request.app[keys.THREADS].run(
        lambda karr: agents.get(karr.db, job.claimed_by or job.agent_id or ""))
    return page(request, "job.html", job=job, agent=agent,
                spec_json=json.dumps(job.spec, indent=2))


@routes.post("/jobs/{job_id}/cancel")
@access("operator")
async def job_cancel(request: web.Request) -> web.Response:
    from kitt_web.api.jobs import cancel_job

    await cancel_job(request)
    return _see_other(f"/jobs/{request.match_info['job_id']}")


@routes.get("/campaigns")
@access("viewer")
async def campaigns_page(request: web.Request) -> web.Response:
    from kitt_web.api.campaigns import campaign_rows

    listed = await request.app[keys.THREADS].run(campaign_rows)
    return page(request, "campaigns.html", campaigns=listed)


async def _wizard(request: web.Request, values: dict, *, status: int = 200,
                  problem: str | None = None) -> web.Response:
    active = await request.app[keys.THREADS].run(
        lambda karr: [a for a in agents.list_all(karr.db) if a.state == "active"])
    models = sorted({m["name"] for a in active
                     for m in ((a.inventory or {}).get("models") or [])})
    return page(request, "campaign_new.html", status=status, agents=active, models=models,
                engines=sorted(kitt.installed_engines()),
                suites=sorted(s["name"] for s in kitt.suite_catalogue()), values=values,
                problem=problem)


@routes.get("/campaigns/new")
@access("operator")
async def campaign_wizard(request: web.Request) -> web.Response:
    return await _wizard(request, {"name": "", "agents": [], "engines": [], "models": [],
                                   "suite": "quick", "runs": ""})


@routes.post("/campaigns/new")
@access("operator")
async def campaign_launch(request: web.Request) -> web.Response:
    """The wizard's choices through the same planning as POST /api/v1/campaigns."""
    from kitt_web.api.campaigns import plan, start

    form = await request.post()
    values = {"name": str(form.get("name", "")).strip(),
              "agents": [str(v) for v in form.getall("agents", [])],
              "engines": [str(v) for v in form.getall("engines", [])],
              "models": [str(v) for v in form.getall("models", [])],
              "suite": str(form.get("suite", "quick")), "runs": str(form.get("runs", ""))}
    body = {k: v for k, v in values.items() if k != "runs"}
    if values["runs"].strip():
        body["runs"] = int(values["runs"]) if values["runs"].isdigit() else values["runs"]
    threads = request.app[keys.THREADS]
    known = await threads.run(lambda karr: agents.list_all(karr.db))
    try:
        document, entries = await threads.run(lambda karr: plan(body, known))
    except ApiError as error:
        return await _wizard(request, values, status=400, problem=error.message + (
            f" ({error.hint})" if error.hint else ""))
    made = await start(request, document, entries)
    return _see_other(f"/campaigns/{made['id']}")


@routes.get("/campaigns/{campaign_id}")
@access("viewer")
async def campaign_page(request: web.Request) -> web.Response:
    from kitt_web.api.campaigns import campaign_or_404

    return page(request, "campaign.html", campaign=await campaign_or_404(request))


@routes.post("/campaigns/{campaign_id}/cancel")
@access("operator")
async def campaign_cancel(request: web.Request) -> web.Response:
    from kitt_web.api.campaigns import cancel_campaign

    await cancel_campaign(request)
    return _see_other(f"/campaigns/{request.match_info['campaign_id']}")
