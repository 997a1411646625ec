"""Runs: list (filters, sort, keyset pages), show (the stored document, lossless), delete,
export, compare, aggregate and trend."""

from __future__ import annotations

import asyncio
import queue
import threading
from datetime import datetime, timezone

from aiohttp import web

import kitt
from kitt_web import keys
from kitt_web.api.params import (
    choice,
    decode_cursor,
    encode_cursor,
    integer,
    json_body,
    json_response,
    json_text,
    one,
    read_body,
    run_filter,
)
from kitt_web.auth import access
from kitt_web.errors import bad_request, not_found

routes = web.RouteTableDef()

SORT_KEYS = ("started_at", "model", "engine", "suite", "status", "fingerprint", "id")
"""What KARR's list_runs orders by; `-` first means descending."""
SORTS = tuple(f"{sign}{key}" for key in SORT_KEYS for sign in ("-", ""))
MAX_LIMIT = 500
MAX_COMPARE = 20
EXPORT_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson",
                "csv": "text/csv"}


def summary_dict(summary) -> dict:
    out = kitt.unstructure(summary)
    out["started_at"] = summary.started_at.isoformat()
    out["finished_at"] = summary.finished_at.isoformat() if summary.finished_at else None
    return out


def list_query(request: web.Request) -> dict:
    """What a runs list asks for, validated: filter, sort, page size and cursor (the
    dashboard's runs page reads the same query string)."""
    where = run_filter(request)
    sort_text = choice(request, "sort", SORTS, "-started_at")
    descending = sort_text.startswith("-")
    sort = sort_text.lstrip("-")
    limit = integer(request, "limit", 50, 1, MAX_LIMIT)
    cursor = one(request, "cursor")
    after = decode_cursor(cursor, sort, descending) if cursor else None
    return {"where": where, "sort": sort, "descending": descending, "limit": limit,
            "after": after, "sort_text": sort_text}


def list_page(karr, query: dict) -> dict:
    rows = karr.store.list_runs(query["where"], limit=query["limit"] + 1, sort=query["sort"],
                                descending=query["descending"], after=query["after"])
    more = len(rows) > query["limit"]
    rows = rows[:query["limit"]]
    last = rows[-1] if rows and more else None
    return {
        "runs": [summary_dict(r) for r in rows],
        "count": karr.store.count_runs(query["where"]),
        "sort": query["sort_text"],
        "next_cursor": encode_cursor(query["sort"], query["descending"],
                                     getattr(last, query["sort"]), last.id) if last else None,
    }


@routes.get("/api/v1/runs")
@access("viewer", public=True)
async def list_runs(request: web.Request) -> web.Response:
    query = list_query(request)
    return json_response(await request.app[keys.THREADS].run(list_page, query))


def find_document(karr, run_id: str) -> str | None:
    for _, document in karr.store.documents(kitt.RunFilter(ids=(run_id,))):
        return document
    return None


def run_id_of(request: web.Request) -> str:
    run_id = request.match_info["run_id"]
    if not run_id or len(run_id) > 500 or "\x00" in run_id:
        raise bad_request("run_id", "not a run id")
    return run_id


MAX_RUN = 256 * 1024 * 1024
"""A run document with every request sample of a long load test stays well under this."""


@routes.post("/api/v1/runs")
@access("operator")
async def submit_run(request: web.Request) -> web.Response:
    """One run document (a `metrics.json`, as `kitt results submit` sends it) with its
    `X-Content-SHA256`: stored once; sending it again changes nothing."""
    from kitt_web import intake
    from kitt_web.influx import forward

    data = await read_body(request, MAX_RUN, "run document")
    run = intake.read_document(data, request.headers.get("X-Content-SHA256", ""))
    stored = await request.app[keys.THREADS].run(lambda karr: intake.store_once(karr.store,
                                                                                run))
    if stored:
        forward(request.app, run)
    return json_response({"run_id": run.id, "stored": stored}, status=201 if stored else 200)


@routes.get("/api/v1/runs/{run_id}")
@access("viewer", public=True)
async def show_run(request: web.Request) -> web.Response:
    """The run exactly as stored: the document `kitt storage show --json` prints."""
    run_id = run_id_of(request)
    document = await request.app[keys.THREADS].run(find_document, run_id)
    if document is None:
        raise not_found(f"run {run_id!r}", "list runs at /api/v1/runs")
    return json_text(document)


@routes.delete("/api/v1/runs/{run_id}")
@access("admin")
async def delete_run(request: web.Request) -> web.Response:
    run_id = run_id_of(request)

    def delete(karr) -> bool:
        if not karr.store.count_runs(kitt.RunFilter(ids=(run_id,))):
            return False
        karr.store.delete_run(run_id)
        return True

    if not await request.app[keys.THREADS].run(delete):
        raise not_found(f"run {run_id!r}")
    return web.Response(status=204)


@routes.get("/api/v1/runs-export")
@access("viewer", public=True)
async def export_runs(request: web.Request) -> web.StreamResponse:
    """Matching runs as `json` (an array of documents), `jsonl` or `csv` (a row per metric
    value), streamed from a store opened for the export alone."""
    fmt = choice(request, "format", tuple(EXPORT_TYPES), "jsonl")
    where = run_filter(request)
    config = request.app[keys.CONFIG]
    chunks: queue.Queue = queue.Queue(maxsize=64)
    done = object()
    cancelled = threading.Event()

    def produce() -> None:
        try:
            with kitt.open_store(config.store_url, create=False) as store:
                batch: list[str] = []
                size = 0
                for chunk in kitt.export_chunks(store, fmt, where):
                    if cancelled.is_set():
                        return
                    batch.append(chunk)
                    size += len(chunk)
                    if size >= 64 * 1024:
                        chunks.put("".join(batch))
                        batch, size = [], 0
                chunks.put("".join(batch))
        except Exception as exc:  # surfaced to the handler, which still owns the response
            chunks.put(exc)
        finally:
            chunks.put(done)

    loop = asyncio.get_running_loop()
    producer = loop.run_in_executor(None, produce)
    first = await loop.run_in_executor(None, chunks.get)
    if isinstance(first, Exception):
        await producer
        raise first
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(headers={
        "Content-Type": f"{EXPORT_TYPES[fmt]}; charset=utf-8",
        "Content-Disposition": f'attachment; filename="kitt-runs-{stamp}.{fmt}"'})
    from kitt_web.app import apply_headers

    apply_headers(request, response)
    await response.prepare(request)
    try:
        item = first
        while item is not done:
            if isinstance(item, Exception):
                break  # headers are sent: end the body early; the client sees a short file
            await response.write(item.encode())
            item = await loop.run_in_executor(None, chunks.get)
    finally:
        cancelled.set()
        while not producer.done():  # unblock a producer waiting on a full queue
            try:
                chunks.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.01)
        await producer
    await response.write_eof()
    return response


def ids_param(request: web.Request, name: str = "ids") -> list[str]:
    text = one(request, name)
    if not text:
        raise bad_request(name, "missing", "give run ids separated by commas")
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not 1 <= len(ids) <= MAX_COMPARE:
        raise bad_request(name, f"give 1 to {MAX_COMPARE} run ids")
    return list(dict.fromkeys(ids))


def compare_runs(karr, ids: list[str], baseline: str | None) -> dict:
    missing = [i for i in ids if not karr.store.count_runs(kitt.RunFilter(ids=(i,)))]
    if missing:
        raise not_found(f"run {missing[0]!r}", "compare takes exact run ids")
    if baseline is not None:
        if baseline not in ids:
            raise bad_request("baseline", "is not one of the compared runs")
        ids = [baseline, *(i for i in ids if i != baseline)]
    return kitt.compare_stored(karr.store, ids).to_dict()


@routes.get("/api/v1/compare")
@access("viewer", public=True)
async def compare(request: web.Request) -> web.Response:
    """Runs side by side, each against the baseline (the first, or `baseline`)."""
    ids = ids_param(request)
    baseline = one(request, "baseline")
    return json_response(await request.app[keys.THREADS].run(compare_runs, ids, baseline))


@routes.get("/api/v1/aggregate")
@access("viewer", public=True)
async def aggregate(request: web.Request) -> web.Response:
    """Mean, stddev and cv of every metric per group (`kitt storage aggregate`)."""
    where = run_filter(request)
    text = one(request, "group_by", "model,engine") or ""
    group_by = [key.strip() for key in text.split(",") if key.strip()]
    allowed = ("model", "engine", "engine_version", "suite", "fingerprint", "status", "mode")
    bad = [key for key in group_by if key not in allowed]
    if bad:
        raise bad_request("group_by", f"cannot group by {bad[0]!r}",
                          f"use any of: {', '.join(allowed)}")
    rows = await request.app[keys.THREADS].run(
        lambda karr: karr.store.aggregate(where, group_by))
    return json_response({"group_by": group_by, "rows": kitt.unstructure(rows)})


@routes.get("/api/v1/trend")
@access("viewer", public=True)
async def trend(request: web.Request) -> web.Response:
    """One metric over time for the runs the filter selects, each point judged against
    the one before as `kitt results compare` would."""
    where = run_filter(request)
    benchmark = one(request, "benchmark")
    metric = one(request, "metric_name")
    if not benchmark:
        raise bad_request("benchmark", "missing", "e.g. benchmark=throughput")
    if not metric:
        raise bad_request("metric_name", "missing", "e.g. metric_name=output_tokens_per_s")
    limit = integer(request, "limit", 200, 2, 500)
    found = await request.app[keys.THREADS].run(
        lambda karr: kitt.trend(karr.store, where, benchmark, metric, limit=limit))
    return json_response(found.to_dict())


@routes.get("/api/v1/leaderboard")
@access("viewer", public=True)
async def leaderboard(request: web.Request) -> web.Response:
    """Model and engine pairs on one hardware fingerprint, best first by one metric."""
    fingerprint = one(request, "fingerprint")
    benchmark = one(request, "benchmark")
    metric = one(request, "metric_name")
    for name, value in (("fingerprint", fingerprint), ("benchmark", benchmark),
                        ("metric_name", metric)):
        if not value:
            raise bad_request(name, "missing")
    where = kitt.RunFilter(fingerprint=fingerprint, status=one(request, "status") or None)
    rows, direction = await request.app[keys.THREADS].run(
        leaderboard_rows, where, benchmark, metric)
    return json_response({"fingerprint": fingerprint, "benchmark": benchmark,
                          "metric": metric, "direction": direction,
                          "rows": kitt.unstructure(rows)})


def leaderboard_rows(karr, where: kitt.RunFilter, benchmark: str, metric: str,
                     direction: str | None = None) -> tuple[list, str]:
    """(model and engine groups best first, the direction that ranked them). Without
    `direction`, the one the newest runs state, as a trend judges it."""
    rows = [row for row in karr.store.aggregate(where, ("model", "engine"))
            if row.benchmark == benchmark and row.metric == metric]
    if direction is None:
        direction = kitt.trend(karr.store, where, benchmark, metric, limit=20).direction
    rows.sort(key=lambda row: row.mean, reverse=direction != "lower")
    return rows, direction


@routes.post("/api/v1/runs-delete")
@access("admin")
async def delete_many(request: web.Request) -> web.Response:
    """Delete several runs at once (all or none): `{"ids": [...]}`."""
    body = await json_body(request)
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids) \
            or len(ids) > 1000:
        raise bad_request("ids", "must be a list of 1 to 1000 run ids")

    def delete(karr):
        known = {s.id for s in karr.store.list_runs(kitt.RunFilter(ids=tuple(ids)))}
        missing = [i for i in ids if i not in known]
        if missing:
            raise not_found(f"run {missing[0]!r}", "nothing was deleted")
        return karr.store.delete_runs(list(dict.fromkeys(ids)))

    deleted = await request.app[keys.THREADS].run(delete)
    return json_response({"deleted": deleted})

