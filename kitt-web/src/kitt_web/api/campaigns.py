"""Campaigns from the web: create (plan every model on every engine, each entry on a
chosen agent that has the model in a format the engine serves), list, read with progress
per entry, cancel, and the campaign file (`kitt campaign run` reads it, with the models
in the folder it names them from)."""

from __future__ import annotations

import re

import attrs
from aiohttp import web

import kitt
from kitt_web import keys
from kitt_web.api.params import json_body, json_response
from kitt_web.auth import access, actor_of
from kitt_web.errors import ApiError, bad_request, not_found
from kitt_web.state import agents, campaigns, jobs

routes = web.RouteTableDef()
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
FIELDS = ("name", "agents", "engines", "models", "suite", "runs")


def _names(body: dict, field: str) -> list[str]:
    value = body.get(field)
    if not isinstance(value, list) or not value or len(value) > 200 or not all(
            isinstance(v, str) and v and len(v) <= 4096 and "\n" not in v for v in value):
        raise bad_request(field, "must list 1 to 200 names")
    return list(dict.fromkeys(value))


def plan(body: dict, known: list[agents.Agent]) -> tuple[dict, list[dict]]:
    """The campaign document and its entries from a request; a 400 naming the field."""
    extra = set(body) - set(FIELDS)
    if extra:
        raise bad_request(sorted(extra)[0], "is not a field of a campaign",
                          f"fields: {', '.join(FIELDS)}")
    name = body.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise bad_request("name", "letters, digits, '.', '_' or '-', up to 100")
    by_id = {a.id: a for a in known if a.state == "active"}
    chosen = []
    for agent_id in _names(body, "agents"):
        if agent_id not in by_id:
            raise bad_request("agents", f"no active agent {agent_id!r}",
                              "see GET /api/v1/agents")
        chosen.append(by_id[agent_id])
    installed = kitt.installed_engines()
    engines = []
    for engine_name in _names(body, "engines"):
        if engine_name not in installed:
            raise bad_request("engines", f"unknown engine {engine_name!r}",
                              f"installed engines: {', '.join(sorted(installed))}")
        engines.append(installed[engine_name])
    models = _names(body, "models")
    suite_name = body.get("suite", "quick")
    if not isinstance(suite_name, str) or not _NAME.fullmatch(suite_name):
        raise bad_request("suite", "must be a suite's name")
    try:
        suite = kitt.load_suite(suite_name, kitt.installed_benchmarks())
    except kitt.BadInput as exc:
        raise bad_request("suite", exc.message, exc.hint) from None
    runs = body.get("runs")
    if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int)
                             or not 1 <= runs <= 100):
        raise bad_request("runs", "must be a whole number from 1 to 100, or absent")
    from kitt_web.jobspec import suite_document

    entries, load = [], {a.id: 0 for a in chosen}
    for model in models:
        for engine in engines:
            fits, reasons = [], []
            for agent in chosen:
                why = _why_not(agent, model, engine)
                (reasons if why else fits).append(why or agent)
            if fits:
                agent = min(fits, key=lambda a: load[a.id])
                load[agent.id] += 1
                entries.append({"model": model, "engine": engine.name, "agent_id": agent.id})
            else:
                entries.append({"model": model, "engine": engine.name,
                                "skip_reason": "; ".join(dict.fromkeys(reasons))})
    if not any("agent_id" in e for e in entries):
        raise bad_request("models", "no entry can run: " + "; ".join(
            dict.fromkeys(e["skip_reason"] for e in entries)))
    document = {"name": name, "models": models, "engines": [e.name for e in engines],
                "suite": suite_name, "runs": runs, "agents": [a.name for a in chosen],
                "suite_document": suite_document(suite)}
    return document, entries


def _why_not(agent: agents.Agent, model: str, engine) -> str | None:
    inventory = agent.inventory or {}
    reported = (inventory.get("engines") or {}).get(engine.name)
    if not reported or not reported.get("modes"):
        return f"agent {agent.name} cannot run {engine.name}"
    found = next((m for m in inventory.get("models") or []
                  if model in (m.get("name"), m.get("path"))), None)
    if found is None:
        return f"agent {agent.name} has no {model}"
    if found.get("format") not in engine.formats:
        return f"{model} is {found.get('format')}; {engine.name} serves " \
               f"{', '.join(engine.formats)}"
    return None


def campaign_dict(karr, campaign: campaigns.Campaign) -> dict:
    from kitt_web.api.jobs import job_dict

    document = {k: v for k, v in campaign.document.items() if k != "suite_document"}
    rows = []
    for entry, job in campaigns.entries(karr.db, campaign.id):
        rows.append({**attrs.asdict(entry), "state": campaigns.entry_state(
            entry, job, campaign.state), "run_id": job.run_id if job else None,
            "job": job_dict(job, spec=False) if job else None})
    return {"id": campaign.id, "name": campaign.name, "state": campaign.state,
            "created_at": campaign.created_at, "created_by": campaign.created_by,
            "finished_at": campaign.finished_at, "document": document,
            "progress": campaigns.progress(karr.db, campaign), "entries": rows}


@routes.post("/api/v1/campaigns")
@access("operator")
async def create_campaign(request: web.Request) -> web.Response:
    """`{"name", "agents": [ids], "engines": [...], "models": [...], "suite", "runs"?}`:
    planned now (each entry on a chosen agent that can run it, or skipped with why) and
    dispatched by the server's scheduler, one job per agent at a time."""
    body = await json_body(request)
    threads = request.app[keys.THREADS]
    known = await threads.run(lambda karr: agents.list_all(karr.db))
    document, entries = await threads.run(lambda karr: plan(body, known))
    found = await start(request, document, entries)
    return json_response({"campaign": found}, status=201)


async def start(request: web.Request, document: dict, entries: list[dict]) -> dict:
    """Create a planned campaign and dispatch its first entries now (the scheduler does
    the rest); the API's and the wizard's one way."""
    by = actor_of(request).token_id

    def make(karr):
        campaign = campaigns.create(karr.db, document["name"], document, entries, by)
        campaigns.dispatch(karr.db)
        return campaign_dict(karr, campaigns.get(karr.db, campaign.id))

    found = await request.app[keys.THREADS].run(make)
    request.app[keys.NOTIFIER].notify("queue")
    return found


def campaign_rows(karr) -> list[dict]:
    """Every campaign with its progress (the list and its page)."""
    return [{"id": c.id, "name": c.name, "state": c.state, "created_at": c.created_at,
             "finished_at": c.finished_at, "progress": campaigns.progress(karr.db, c)}
            for c in campaigns.list_all(karr.db)]


@routes.get("/api/v1/campaigns")
@access("viewer")
async def list_campaigns(request: web.Request) -> web.Response:
    return json_response({"campaigns": await request.app[keys.THREADS].run(campaign_rows)})


async def campaign_or_404(request: web.Request) -> dict:
    campaign_id = request.match_info["campaign_id"]

    def read(karr):
        found = campaigns.get(karr.db, campaign_id)
        return None if found is None else campaign_dict(karr, found)

    found = await request.app[keys.THREADS].run(read)
    if found is None:
        raise not_found(f"campaign {campaign_id!r}", "see GET /api/v1/campaigns")
    return found


@routes.get("/api/v1/campaigns/{campaign_id}")
@access("viewer")
async def get_campaign(request: web.Request) -> web.Response:
    return json_response({"campaign": await campaign_or_404(request)})


@routes.post("/api/v1/campaigns/{campaign_id}/cancel")
@access("operator")
async def cancel_campaign(request: web.Request) -> web.Response:
    """No entry is dispatched any more; the entries' jobs in flight are cancelled."""
    found = await campaign_or_404(request)
    by = actor_of(request).token_id
    try:
        stopped = await request.app[keys.THREADS].run(
            lambda karr: campaigns.cancel(karr.db, found["id"], by))
    except jobs.Conflict as conflict:
        raise ApiError(409, "conflict", conflict.message, conflict.hint) from None
    for job_id in stopped:
        request.app[keys.NOTIFIER].notify(f"job:{job_id}")
    return json_response({"campaign": await campaign_or_404(request)})


@routes.get("/api/v1/campaigns/{campaign_id}/campaign.yaml")
@access("viewer")
async def campaign_file(request: web.Request) -> web.Response:
    """The campaign as the file `kitt campaign run` reads (models named as in the agents'
    model storage: run it from that folder)."""
    import io

    from ruamel.yaml import YAML

    found = await campaign_or_404(request)
    document = found["document"]
    data = {"name": document["name"],
            "description": f"made on the web; ran on {', '.join(document['agents'])}",
            "models": document["models"], "engines": document["engines"],
            "suite": document["suite"]}
    if document.get("runs"):
        data["runs"] = document["runs"]
    out = io.StringIO()
    YAML().dump(data, out)
    return web.Response(text=out.getvalue(), content_type="application/yaml")
