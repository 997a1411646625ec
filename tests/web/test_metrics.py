"""kitt-web's /metrics as Prometheus reads it: parsed with prometheus-client's own parser,
on both stores. A real Prometheus scraping a real `kitt web` is tests/deploy/
test_monitoring.py."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.stores import make_run
from support.web import web_client

import kitt
from kitt_web.state import jobs, open_state

pytestmark = pytest.mark.usefixtures("no_contract_violations")


async def scrape(client, auth) -> dict[str, list]:
    response = await client.get("/metrics", headers=auth)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = text_string_to_metric_families(await response.text())
    return {family.name: family.samples for family in families}


def value(samples, name: str | None = None, **labels) -> float:
    found = [s.value for s in samples if (name is None or s.name == name)
             and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (labels, samples)
    return found[0]


async def test_runs_and_latest_headlines_by_model_engine_fingerprint(seeded):
    async with web_client(seeded.url, metrics_cache_s=0) as client:
        found = await scrape(client, seeded.auth("viewer"))
    assert value(found["kitt_runs"], status="passed") == 5
    assert value(found["kitt_runs"], status="failed") == 1
    # The latest run of each model: run 5 (a.gguf) and run 6 (b.gguf); each metric is the
    # mean of the run's two repetitions (base + k and base + k + 0.5).
    headline = found["kitt_run_metric"]
    assert value(headline, model="a.gguf", benchmark="throughput", metric="m0") == 105.25
    assert value(headline, model="b.gguf", benchmark="throughput", metric="m2") == 108.25
    assert value(headline, model="b.gguf", benchmark="mmlu", metric="accuracy") == 0.5
    sample = next(s for s in headline if s.labels["model"] == "b.gguf")
    assert sample.labels["engine"] == "llamacpp" and sample.labels["fingerprint"] == "fp-a"
    assert {s.labels["model"] for s in found["kitt_run_latest_timestamp_seconds"]} == \
        {"a.gguf", "b.gguf"}
    # Every job state is exported, at zero when there are none (a panel needs the series).
    assert {s.labels["state"]: s.value for s in found["kitt_jobs"]} == \
        dict.fromkeys(jobs.STATES, 0.0)


async def test_hostile_label_values_are_escaped(store_url):
    hostile = 'we"ird\\model\nname{x="1"}'
    with kitt.open_store(store_url) as store:
        store.save_run(make_run(1, model=hostile, params={"concurrency": 4}))
        db = open_state(store)
        from kitt_web.state import tokens

        secret = tokens.create(db, "viewer", "viewer")[1]
    async with web_client(store_url) as client:
        found = await scrape(client, {"Authorization": f"Bearer {secret}"})
    sample = next(s for s in found["kitt_run_metric"] if s.labels["metric"] == "m1")
    assert sample.labels["model"] == hostile
    assert sample.labels["params"] == '{"concurrency":4}'


async def test_queue_changes_show_on_the_next_scrape(seeded):
    async with web_client(seeded.url, metrics_cache_s=0) as client:
        auth = seeded.auth("viewer")
        assert value((await scrape(client, auth))["kitt_jobs"], state="queued") == 0
        with kitt.open_store(seeded.url) as store:
            jobs.submit(open_state(store), "cleanup_storage", {"older_than_days": 3},
                        agent_id=None, created_by="test")
        assert value((await scrape(client, auth))["kitt_jobs"], state="queued") == 1


async def test_request_latency_is_counted_by_route_pattern(seeded):
    async with web_client(seeded.url) as client:
        auth = seeded.auth("viewer")
        for run_id in seeded.run_ids[:3]:
            assert (await client.get(f"/api/v1/runs/{run_id}", headers=auth)).status == 200
        assert (await client.get("/api/v1/runs/nope", headers=auth)).status == 404
        latency = (await scrape(client, auth))["kitt_http_request_duration_seconds"]
    route = "/api/v1/runs/{run_id}"
    assert value(latency, "kitt_http_request_duration_seconds_count", route=route,
                 status="200", method="GET") == 3
    assert value(latency, "kitt_http_request_duration_seconds_count", route=route,
                 status="404", method="GET") == 1
    assert not any(run_id in s.labels.get("route", "") for s in latency
                   for run_id in seeded.run_ids)


async def test_openmetrics_when_the_scraper_asks_for_it(seeded):
    async with web_client(seeded.url) as client:
        response = await client.get("/metrics", headers={
            **seeded.auth("viewer"), "Accept": "application/openmetrics-text; version=1.0.0"})
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await response.text()).endswith("# EOF\n")


async def test_metrics_need_a_token_unless_reads_are_public(seeded):
    async with web_client(seeded.url) as client:
        assert (await client.get("/metrics")).status == 401
        bogus = {"Authorization": "Bearer kitt_" + "x" * 43}
        assert (await client.get("/metrics", headers=bogus)).status == 401
    async with web_client(seeded.url, public_read=True) as client:
        assert (await client.get("/metrics")).status == 200
