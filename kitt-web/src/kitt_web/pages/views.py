"""The dashboard's pages. Each reads what its JSON twin in /api/v1 returns (the same
functions and the same query string), so a view is a permalink and a page never shows a
number the API would not:

    /                  overview                 (/api/v1/runs, /api/v1/aggregate)
    /runs              runs: filters, sort, pages, pick to compare, export
    /runs/{id}         one run: identity, hardware, config, metrics, plots, items, errors
    /compare?ids=...   runs side by side         (/api/v1/compare)
    /trends            a metric over time, a leaderboard (/api/v1/trend, /leaderboard)
    /models            the model browser          (/api/v1/models)
    /settings /tokens  admin
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from aiohttp import web

import kitt
from kitt_web import keys
from kitt_web.api import admin as admin_api
from kitt_web.api import models as models_api
from kitt_web.api import runs as runs_api
from kitt_web.api.params import FILTER_FIELDS, one
from kitt_web.auth import access, actor_of
from kitt_web.errors import ApiError, not_found
from kitt_web.pages.render import page
from kitt_web.state import settings, tokens

routes = web.RouteTableDef()
ITEMS_SHOWN = 200


def overview_data(karr) -> dict:
    total = karr.store.count_runs()
    passed = karr.store.count_runs(kitt.RunFilter(status="passed"))
    return {"total": total, "passed": passed,
            "pass_rate": passed / total if total else None,
            "models": len({s.model for s in karr.store.list_runs(limit=1000)}),
            "latest": karr.store.list_runs(limit=10)}


@routes.get("/")
@access("viewer", public=True)
async def overview(request: web.Request) -> web.Response:
    data = await request.app[keys.THREADS].run(overview_data)
    return page(request, "overview.html", **data)


def _query_without(request: web.Request, *drop: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query.items() if k not in drop]


@routes.get("/runs")
@access("viewer", public=True)
async def runs(request: web.Request) -> web.Response:
    query = runs_api.list_query(request)
    data = await request.app[keys.THREADS].run(runs_api.list_page, query)
    kept = _query_without(request, "cursor")
    next_url = (f"/runs?{urlencode([*kept, ('cursor', data['next_cursor'])])}"
                if data["next_cursor"] else None)
    export = urlencode(_query_without(request, "cursor", "sort", "limit"))
    return page(request, "runs.html", data=data, latest=data["runs"], pick=True,
                values={f: request.query.get(f, "") for f in
                        (*FILTER_FIELDS, "since", "until", "sort", "limit")},
                metrics=request.query.getall("metric", []), next_url=next_url,
                first_url=f"/runs?{urlencode(kept)}" if request.query.get("cursor") else None,
                export_query=export, sorts=runs_api.SORTS)


def stored_run(karr, run_id: str) -> kitt.Run | None:
    """The run with exactly this id (a page's permalink never means a prefix), or None."""
    if not karr.store.count_runs(kitt.RunFilter(ids=(run_id,))):
        return None
    return karr.store.get_run(run_id)


async def run_or_404(request: web.Request, build):
    """`build(run)` in a store thread for the run the path names; 404 when there is none."""
    run_id = runs_api.run_id_of(request)

    def call(karr):
        run = stored_run(karr, run_id)
        return None if run is None else (build(karr, run),)

    found = await request.app[keys.THREADS].run(call)
    if found is None:
        raise not_found(f"run {run_id!r}", "pick a run on the runs page")
    return found[0]


def run_view(karr, run: kitt.Run) -> dict:
    from kitt_web.state import jobs

    return {"run": run, "plots": kitt.plot_data([run]), "job": jobs.for_run(karr.db, run.id),
            "comparison": kitt.compare_stored(karr.store, [run.id]).to_dict()}


@routes.get("/runs/{run_id}")
@access("viewer", public=True)
async def run_page(request: web.Request) -> web.Response:
    found = await run_or_404(request, run_view)
    run = found["run"]
    items = [(result.name, item) for result in run.results for item in result.items]
    rows = found["comparison"]["rows"]
    headline = _headline(rows)
    return page(request, "run.html", run=run, rows=rows, headline=headline, job=found["job"],
                plots_json=json.dumps(found["plots"], allow_nan=False),
                items=items[:ITEMS_SHOWN], items_total=len(items),
                config_json=json.dumps(kitt.unstructure(run.config), indent=2),
                hardware=hardware_lines(run.hardware),
                errors=[(r.name, r.run_number, r.error) for r in run.results if r.error])


def _headline(rows: list[dict]) -> list[dict]:
    """The rows of each benchmark's headline metrics (what `kitt run` summarises); every
    row of a benchmark whose plugin is not installed here."""
    installed = kitt.installed_benchmarks()
    out = []
    for row in rows:
        name = row["benchmark"].split(" [", 1)[0]
        benchmark = installed.get(name)
        if benchmark is None or row["metric"] in benchmark.headline:
            out.append(row)
    return out


def hardware_lines(hardware) -> list[tuple[str, str]]:
    """The fingerprint's sections as a person reads them."""
    gpu = hardware.gpu
    gpus = ", ".join(f"{g.name}{f' ({g.memory_mib} MiB)' if g.memory_mib else ''}"
                     for g in gpu.gpus) or f"none ({gpu.source})"
    if gpu.driver_version:
        gpus += f"; driver {gpu.driver_version}"
    if gpu.cuda_version:
        gpus += f", CUDA {gpu.cuda_version}"
    cpu = hardware.cpu
    parts = [("GPU", gpus),
             ("CPU", " ".join(str(v) for v in (cpu.brand, cpu.architecture) if v)
              + (f", {cpu.cores} cores / {cpu.threads} threads" if cpu.cores else "")),
             ("memory", f"{hardware.memory.total_mib} MiB {hardware.memory.type or ''}".strip()
              if hardware.memory.total_mib else "unknown"),
             ("storage", " ".join(v for v in (hardware.storage.kind, hardware.storage.model)
                                  if v) or "unknown"),
             ("OS", " ".join(v for v in (hardware.os.distribution, hardware.os.kernel) if v)
              or "unknown"),
             ("environment", hardware.environment)]
    return [(key, value) for key, value in parts if value]


@routes.get("/runs/{run_id}/report.html")
@access("viewer", public=True)
async def run_report(request: web.Request) -> web.Response:
    """The run's self-contained report, drawn on demand (as `kitt report` would)."""
    html = await run_or_404(request, lambda karr, run: kitt.render_report([run]))
    # report.html carries its own inline style and SVG: it is sandboxed, scripts off.
    return web.Response(text=html, content_type="text/html", headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                   "img-src data:; sandbox"})


@routes.get("/runs/{run_id}/samples.jsonl")
@access("viewer", public=True)
async def run_samples(request: web.Request) -> web.Response:
    """Every request sample of the run, one JSON object per line, with its benchmark."""
    run_id = runs_api.run_id_of(request)

    def samples(karr, run):
        return "".join(
            json.dumps({"benchmark": r.name, "run_number": r.run_number,
                        **kitt.unstructure(s)}, allow_nan=False) + "\n"
            for r in run.results for s in r.requests)

    text = await run_or_404(request, samples)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:40]  # a run id is data, not a header
    return web.Response(text=text, content_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="{safe}-samples.jsonl"'})


def _picked(request: web.Request) -> list[str]:
    ids = [part.strip() for value in request.query.getall("ids", [])
           for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(ids))


@routes.get("/compare")
@access("viewer", public=True)
async def compare(request: web.Request) -> web.Response:
    ids = _picked(request)
    if not ids:
        return page(request, "compare.html", comparison=None, ids=[], baseline=None,
                    diff_only=False, query="")
    if len(ids) > runs_api.MAX_COMPARE:
        raise ApiError(400, "bad_request", f"ids: at most {runs_api.MAX_COMPARE} runs")
    baseline = one(request, "baseline") or ids[0]
    diff_only = one(request, "diff") == "1"
    comparison = await request.app[keys.THREADS].run(runs_api.compare_runs, ids, baseline)
    rows = comparison["rows"]
    if diff_only:
        rows = [row for row in rows if any(v["delta"] not in (None, 0) or v["flag"] ==
                                           "missing" for v in row["values"][1:])]
    return page(request, "compare.html", comparison=comparison, rows=rows, ids=ids,
                baseline=baseline, diff_only=diff_only,
                query=urlencode([("ids", ",".join(ids)), ("baseline", baseline)]))


def trends_data(karr, where, benchmark, metric, fingerprint) -> dict:
    every = karr.store.aggregate(kitt.RunFilter(), ("fingerprint",))
    out = {"names": sorted({(row.benchmark, row.metric) for row in every}),
           "fingerprints": sorted({row.group["fingerprint"] for row in every}),
           "trend": None, "board": None}
    if benchmark and metric:
        out["trend"] = kitt.trend(karr.store, where, benchmark, metric).to_dict()
        if fingerprint:
            out["board"], _ = runs_api.leaderboard_rows(
                karr, kitt.RunFilter(fingerprint=fingerprint), benchmark, metric,
                out["trend"]["direction"])
    return out


@routes.get("/trends")
@access("viewer", public=True)
async def trends(request: web.Request) -> web.Response:
    from kitt_web.api.params import run_filter

    where = run_filter(request)
    benchmark, metric = one(request, "benchmark"), one(request, "metric_name")
    pick = one(request, "pick")  # the page's one select: "benchmark|metric"
    if pick:
        benchmark, _, metric = pick.partition("|")
    data = await request.app[keys.THREADS].run(trends_data, where, benchmark, metric,
                                               where.fingerprint)
    return page(request, "trends.html", **data, benchmark=benchmark or "",
                metric=metric or "", values={f: request.query.get(f, "")
                                             for f in ("model", "engine", "fingerprint")},
                trend_json=json.dumps(data["trend"], allow_nan=False))


@routes.get("/models")
@access("viewer", public=True)
async def models(request: web.Request) -> web.Response:
    engine = one(request, "engine") or None
    data = await request.app[keys.THREADS].run(models_api.scan,
                                               kitt.engine_name(engine) if engine else None)
    engines = sorted(kitt.installed_engines())
    return page(request, "models.html", data=data, engine=engine or "", engines=engines)


@routes.get("/settings")
@access("admin")
async def settings_page(request: web.Request) -> web.Response:
    values = await request.app[keys.THREADS].run(lambda karr: settings.current(karr.db))
    return page(request, "settings.html", values=values, saved=request.query.get("saved"),
                problem=None)


@routes.post("/settings")
@access("admin")
async def settings_save(request: web.Request) -> web.Response:
    form = await request.post()
    changes = {}
    for key in settings.SETTINGS:
        if f"reset_{key}" in form:
            changes[key] = None
        elif key in form:
            changes[key] = form[key] if key != "devon_tab" else form[key] == "on"
    if "devon_tab" not in form and "reset_devon_tab" not in form:
        changes["devon_tab"] = False  # an unchecked box sends nothing
    by = actor_of(request).token_id
    try:
        await request.app[keys.THREADS].run(lambda karr: settings.save(karr.db, changes, by))
    except kitt.BadInput as error:
        values = await request.app[keys.THREADS].run(lambda karr: settings.current(karr.db))
        return page(request, "settings.html", status=400, values=values, saved=None,
                    problem=str(error))
    return web.Response(status=303, headers={"Location": "/settings?saved=1"})


@routes.get("/tokens")
@access("admin")
async def tokens_page(request: web.Request) -> web.Response:
    found = await request.app[keys.THREADS].run(lambda karr: tokens.list_all(karr.db))
    return page(request, "tokens.html", tokens=found, created=None, secret=None,
                problem=None, roles=tokens.ROLES)


@routes.post("/tokens")
@access("admin")
async def token_create(request: web.Request) -> web.Response:
    form = await request.post()
    name, role, expires = (str(form.get(k, "")) for k in ("name", "role", "expires"))
    by = actor_of(request).token_id
    problem = created = secret = None
    try:
        seconds = tokens.parse_duration(expires) if expires.strip() else None
        created, secret = await request.app[keys.THREADS].run(
            lambda karr: tokens.create(karr.db, name, role, expires_in=seconds, created_by=by))
    except kitt.BadInput as error:
        problem = str(error)
    found = await request.app[keys.THREADS].run(lambda karr: tokens.list_all(karr.db))
    return page(request, "tokens.html", status=400 if problem else 201, tokens=found,
                created=created, secret=secret, problem=problem, roles=tokens.ROLES)


@routes.post("/tokens/{token_id}/revoke")
@access("admin")
async def token_revoke(request: web.Request) -> web.Response:
    token_id = request.match_info["token_id"]
    await request.app[keys.THREADS].run(admin_api.revoke_or_404, token_id)
    return web.Response(status=303, headers={"Location": "/tokens"})

