"""KITT's own Prometheus exporter: `GET /metrics` (docs/monitoring.md lists every series).

Written with prometheus-client, so names, help text and label values are escaped as the
exposition format requires. The store-backed series are a snapshot taken in a store thread
and kept for `WebConfig.metrics_cache_s` (scrapes of several Prometheus servers share
it); request latency is counted by `metrics_middleware` as requests end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import attrs
from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

import kitt
import kitt_web
from kitt_web import keys
from kitt_web.auth import access
from kitt_web.state import agents, campaigns, jobs

# Latency buckets for an API whose pages answer in milliseconds and whose long polls wait
# up to the claim timeout (25 s by default).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

routes = web.RouteTableDef()


class Exporter:
    """One app's metrics: its request histogram and the cached store snapshot."""

    def __init__(self) -> None:
        self.latency = Histogram(
            "kitt_http_request_duration_seconds",
            "Time kitt-web took to answer, by method, route and status.",
            ("method", "route", "status"), buckets=BUCKETS, registry=None)
        self._snapshot: Snapshot | None = None
        self._taken_at = 0.0

    async def exposition(self, app: web.Application, accept: str) -> tuple[bytes, str]:
        """The body and its content type: Prometheus's text format, or OpenMetrics when
        the scraper asks for it."""
        now = time.monotonic()
        config, started = app[keys.CONFIG], app[keys.STARTED_AT]
        if self._snapshot is None or now - self._taken_at >= config.metrics_cache_s:
            self._snapshot = await app[keys.THREADS].run(
                lambda karr: take_snapshot(karr, config.agent_lost_after_s, started))
            self._taken_at = now
        registry = CollectorRegistry(auto_describe=False)
        registry.register(SnapshotCollector(self._snapshot))
        registry.register(self.latency)
        encoder, content_type = choose_encoder(accept)
        return encoder(registry), content_type


EXPORTER = web.AppKey("exporter", Exporter)


@web.middleware
async def metrics_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Counts every answered request under its route's pattern (never the raw path: ids
    would make a series per run)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        request.app[EXPORTER].latency.labels(request.method, route, str(status)).observe(
            time.perf_counter() - started)


@routes.get("/metrics")
@access("viewer", public=True)
async def metrics(request: web.Request) -> web.Response:
    body, content_type = await request.app[EXPORTER].exposition(
        request.app, request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


# -- the snapshot -------------------------------------------------------------------------

@attrs.frozen
class Headline:
    model: str
    engine: str
    fingerprint: str
    benchmark: str
    params: str
    metric: str
    unit: str
    value: float


@attrs.frozen
class Snapshot:
    runs: dict[str, int]
    headlines: tuple[Headline, ...]
    latest_run: dict[tuple[str, str, str], float]
    agents: dict[str, int]
    jobs: dict[str, int]
    campaigns: tuple[tuple[str, str, str, dict[str, int]], ...]
    """(id, name, state, entries by state) of the most recent campaigns."""


def take_snapshot(karr: Any, lost_after_s: float, grace_from: float) -> Snapshot:
    store, db = karr.store, karr.db
    runs: dict[str, int] = {}
    latest: dict[tuple[str, str, str], Any] = {}
    for summary in store.list_runs():  # newest first: the first of each group is its latest
        runs[summary.status] = runs.get(summary.status, 0) + 1
        group = (summary.model, summary.engine, summary.fingerprint)
        if group not in latest and summary.status in ("passed", "failed"):
            latest[group] = summary
    headlines = []
    for found in store.comparison_values([s.id for s in latest.values()]):
        group = (found.run.model, found.run.engine, found.run.fingerprint)
        headlines.extend(_headlines(group, found.results))
    held = {row[0] for row in db.query(
        "SELECT DISTINCT claimed_by FROM web_jobs WHERE state IN ('claimed', 'running')")}
    by_status: dict[str, int] = {}
    for agent in agents.list_all(db):
        status = agent.status(busy=agent.id in held, lost_after_s=lost_after_s,
                              grace_from=grace_from)
        by_status[status] = by_status.get(status, 0) + 1
    by_state = {state: count for state, count in
                db.query("SELECT state, COUNT(*) FROM web_jobs GROUP BY state")}
    recent = tuple((c.id, c.name, c.state, campaigns.progress(db, c))
                   for c in campaigns.list_all(db, limit=20))
    return Snapshot(runs, tuple(headlines),
                    {group: s.started_at.timestamp() for group, s in latest.items()},
                    by_status, by_state, recent)


def _headlines(group: tuple[str, str, str], results) -> Iterator[Headline]:
    """The run's headline metrics (`kitt.headline_metrics`, as `kitt run` prints them),
    each the mean over the run's repetitions (--runs)."""
    values: dict[tuple[str, str, str, str], list[float]] = {}
    for result in results:
        chosen = kitt.headline_metrics(result)
        params = json.dumps(result.params, sort_keys=True, separators=(",", ":")) \
            if result.params else ""
        for metric in chosen:
            if metric.value is not None:
                values.setdefault((result.name, params, metric.name, metric.unit or ""),
                                  []).append(float(metric.value))
    for (benchmark, params, metric, unit), found in values.items():
        yield Headline(*group, benchmark, params, metric, unit, sum(found) / len(found))


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self):
        snap = self.snapshot
        info = GaugeMetricFamily("kitt_web_info", "The kitt-web serving these metrics.",
                                 labels=("kitt", "kitt_web"))
        info.add_metric((kitt.__version__, kitt_web.__version__), 1)
        yield info
        yield _gauge("kitt_runs", "Runs in the store, by status.", ("status",),
                     [((status,), n) for status, n in sorted(snap.runs.items())])
        yield _gauge("kitt_run_metric",
                     "Headline metrics of the latest run of each model, engine and hardware "
                     "fingerprint (the mean over the run's repetitions).",
                     ("model", "engine", "fingerprint", "benchmark", "params", "metric",
                      "unit"),
                     [((h.model, h.engine, h.fingerprint, h.benchmark, h.params, h.metric,
                        h.unit), h.value) for h in snap.headlines])
        yield _gauge("kitt_run_latest_timestamp_seconds",
                     "When the latest run of each model, engine and fingerprint started.",
                     ("model", "engine", "fingerprint"), sorted(snap.latest_run.items()))
        yield _gauge("kitt_agents", "Agents by status (online, busy, lost, pending, ...).",
                     ("status",), [((status,), n) for status, n in sorted(snap.agents.items())])
        yield _gauge("kitt_jobs", "Jobs in the queue, by state.", ("state",),
                     [((state,), snap.jobs.get(state, 0)) for state in jobs.STATES])
        yield _gauge("kitt_campaign_entries", "Entries of recent campaigns, by state.",
                     ("campaign_id", "campaign", "campaign_state", "state"),
                     [((cid, name, state, entry), n) for cid, name, state, counts
                      in snap.campaigns for entry, n in sorted(counts.items())])



def _gauge(name: str, doc: str, labels: tuple[str, ...], samples) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(tuple(values), value)
    return family
