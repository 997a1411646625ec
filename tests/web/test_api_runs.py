"""/api/v1 over runs: what a user reads, filters, pages, exports, compares and deletes,
against real stores (SQLite and PostgreSQL) through the application's own stack."""

from __future__ import annotations

import csv
import io
import json

import pytest
from support.stores import make_run

import kitt

pytestmark = pytest.mark.usefixtures("no_contract_violations")


async def get_json(client, path, auth, status=200):
    response = await client.get(path, headers=auth)
    assert response.status == status, await response.text()
    return await response.json()


async def test_list_filters_and_counts(client, seeded):
    auth = seeded.auth("viewer")
    every = await get_json(client, "/api/v1/runs", auth)
    assert every["count"] == 6 and [r["id"] for r in every["runs"]] == [
        "run-00006", "run-00005", "run-00004", "run-00003", "run-00002", "run-00001"]
    a = await get_json(client, "/api/v1/runs?model=a.gguf", auth)
    assert {r["model"] for r in a["runs"]} == {"a.gguf"} and a["count"] == 3
    failed = await get_json(client, "/api/v1/runs?status=failed", auth)
    assert [r["id"] for r in failed["runs"]] == ["run-00003"]
    # Upstream's engine spelling finds the runs stored under the canonical name.
    aliased = await get_json(client, "/api/v1/runs?engine=llama_cpp", auth)
    assert aliased["count"] == (6 if "llamacpp" in kitt.installed_engines() else 0)
    window = await get_json(client, "/api/v1/runs?since=2026-01-01T12:02:00Z"
                                    "&until=2026-01-01T12:04:00Z", auth)
    assert [r["id"] for r in window["runs"]] == ["run-00003", "run-00002"]
    bounded = await get_json(client, "/api/v1/runs?metric=throughput:m0:103:104.6", auth)
    assert [r["id"] for r in bounded["runs"]] == ["run-00004", "run-00003"]


async def test_pages_cover_every_run_once_in_any_sort(client, seeded):
    with kitt.open_store(seeded.url) as store:
        store.save_runs([make_run(i, model=f"m{i % 4}") for i in range(7, 30)])
    auth = seeded.auth("viewer")
    for sort in ("-started_at", "model", "-id", "status"):
        seen, cursor = [], None
        while True:
            path = f"/api/v1/runs?limit=4&sort={sort}" + (f"&cursor={cursor}" if cursor else "")
            page = await get_json(client, path, auth)
            seen += [r["id"] for r in page["runs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 29, sort
        key = sort.lstrip("-")
        every = (await get_json(client, "/api/v1/runs?limit=500", auth))["runs"]
        expected = sorted(every, key=lambda r: (r[key], r["id"]), reverse=sort[0] == "-")
        assert seen == [r["id"] for r in expected], sort


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"), ("limit=", "limit"),
    ("sort=passed", "sort"), ("since=yesterday", "since"),
    ("since=2026-02-01&until=2026-01-01", "until"), ("metric=throughput", "metric"),
    ("metric=throughput:m0:5:1", "metric"), ("metric=throughput:m0:x:", "metric"),
    ("metric=throughput:m0:nan:", "metric"), ("cursor=%%%", "cursor"),
    ("model=a&model=b", "model"),
])
async def test_bad_query_parameters_are_400_naming_the_field(client, seeded, query, field):
    body = await get_json(client, f"/api/v1/runs?{query}", seeded.auth("viewer"), 400)
    assert body["error"]["message"].startswith(f"{field}:")


async def test_a_cursor_from_another_sort_is_refused(client, seeded):
    auth = seeded.auth("viewer")
    page = await get_json(client, "/api/v1/runs?limit=2&sort=model", auth)
    body = await get_json(client, f"/api/v1/runs?limit=2&cursor={page['next_cursor']}",
                          auth, 400)
    assert "another sort" in body["error"]["message"]


async def test_show_is_the_stored_document_exactly(client, seeded):
    response = await client.get("/api/v1/runs/run-00003", headers=seeded.auth("viewer"))
    assert response.status == 200
    assert await response.text() == kitt.to_json(make_run(3, model="a.gguf",
                                                          status="failed"))
    missing = await get_json(client, "/api/v1/runs/run-99999", seeded.auth("viewer"), 404)
    assert missing["error"]["code"] == "not_found"
    # An id prefix is not a permalink: only exact ids answer.
    await get_json(client, "/api/v1/runs/run-0000", seeded.auth("viewer"), 404)


async def test_delete_removes_one_run_and_only_it(client, seeded):
    admin = seeded.auth("admin")
    assert (await client.delete("/api/v1/runs/run-00002", headers=admin)).status == 204
    await get_json(client, "/api/v1/runs/run-00002", admin, 404)
    assert (await get_json(client, "/api/v1/runs", admin))["count"] == 5
    assert (await client.delete("/api/v1/runs/run-00002", headers=admin)).status == 404
    with kitt.open_store(seeded.url) as store:
        assert store.check() == []


async def test_bulk_delete_is_all_or_none(client, seeded):
    admin = seeded.auth("admin")
    response = await client.post("/api/v1/runs-delete", headers=admin,
                                 json={"ids": ["run-00001", "run-nope"]})
    assert response.status == 404
    assert (await get_json(client, "/api/v1/runs", admin))["count"] == 6
    response = await client.post("/api/v1/runs-delete", headers=admin,
                                 json={"ids": ["run-00001", "run-00004"]})
    assert (await response.json())["deleted"] == ["run-00001", "run-00004"]
    assert (await get_json(client, "/api/v1/runs", admin))["count"] == 4


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{not json", "application/json", 400), (b"[1, 2]", "application/json", 400),
    (b'{"ids": "run-00001"}', "application/json", 400),
    (b'{"ids": [1]}', "application/json", 400),
    (b"ids=run-00001", "application/x-www-form-urlencoded", 415),
    (b'{"ids": ["' + b"x" * (2 * 1024 * 1024) + b'"]}', "application/json", 413),
])
async def test_bad_bodies_change_nothing(client, seeded, body, content_type, status):
    response = await client.post("/api/v1/runs-delete", data=body, headers={
        **seeded.auth("admin"), "Content-Type": content_type})
    assert response.status == status
    assert (await response.json())["error"]["code"]
    assert (await get_json(client, "/api/v1/runs", seeded.auth("admin")))["count"] == 6


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
async def test_export_streams_the_filtered_runs(client, seeded, fmt):
    response = await client.get(f"/api/v1/runs-export?format={fmt}&model=a.gguf",
                                headers=seeded.auth("viewer"))
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    text = await response.text()
    if fmt == "json":
        ids = [doc["id"] for doc in json.loads(text)]
    elif fmt == "jsonl":
        ids = [json.loads(line)["id"] for line in text.splitlines()]
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        ids = list(dict.fromkeys(row["run_id"] for row in rows))
        assert {row["metric"] for row in rows} == {"m0", "m1", "m2", "accuracy"}
    assert ids == ["run-00001", "run-00003", "run-00005"]


async def test_compare_judges_against_the_baseline(client, seeded):
    with kitt.open_store(seeded.url) as store:
        store.save_run(make_run(40, value=50.0))  # m0 half of run 1's: a big drop
    auth = seeded.auth("viewer")
    found = await get_json(client, "/api/v1/compare?ids=run-00001,run-00040", auth)
    assert found["baseline"] == "run-00001"
    m0 = next(r for r in found["rows"] if r["metric"] == "m0")
    assert m0["values"][1]["delta"] == pytest.approx(50.0 - 101.0)
    swapped = await get_json(client, "/api/v1/compare?ids=run-00001,run-00040"
                                     "&baseline=run-00040", auth)
    assert swapped["baseline"] == "run-00040"
    await get_json(client, "/api/v1/compare?ids=run-00001,run-nope", auth, 404)
    await get_json(client, "/api/v1/compare?ids=run-00001&baseline=run-00002", auth, 400)
    await get_json(client, "/api/v1/compare", auth, 400)
    ids = ",".join(f"r{i}" for i in range(21))
    await get_json(client, f"/api/v1/compare?ids={ids}", auth, 400)


async def test_aggregate_groups_as_the_cli_does(client, seeded):
    auth = seeded.auth("viewer")
    found = await get_json(client, "/api/v1/aggregate?group_by=model", auth)
    with kitt.open_store(seeded.url) as store:
        expected = kitt.unstructure(store.aggregate(kitt.RunFilter(), ["model"]))
    assert found["rows"] == expected
    await get_json(client, "/api/v1/aggregate?group_by=colour", auth, 400)


async def test_trend_flags_a_regression_against_the_run_before(client, seeded):
    from kitt import Metric

    with kitt.open_store(seeded.url) as store:
        # A metric with a direction (higher is better) that drops 40% at run 9.
        for i, value in ((7, 100.0), (8, 101.0), (9, 60.0), (10, 61.0)):
            run = make_run(i, model="t.gguf")
            result = run.results[0]
            metric = Metric("output_tokens_per_s", value, "tokens/s", "higher")
            import attrs

            run = attrs.evolve(run, results=(attrs.evolve(result, metrics=(metric,)),))
            store.save_run(run)
    found = await get_json(client, "/api/v1/trend?model=t.gguf&benchmark=throughput"
                                   "&metric_name=output_tokens_per_s", seeded.auth("viewer"))
    assert [p["run"]["id"] for p in found["points"]] == [
        "run-00007", "run-00008", "run-00009", "run-00010"]
    assert [p["flag"] for p in found["points"]] == [None, "ok", "critical", "ok"]
    assert found["regressions"] == 1 and found["direction"] == "higher"
    await get_json(client, "/api/v1/trend?benchmark=throughput", seeded.auth("viewer"), 400)


async def test_leaderboard_ranks_by_the_metric(client, seeded):
    with kitt.open_store(seeded.url) as store:
        store.save_runs([make_run(50, model="fast.gguf", value=500.0),
                         make_run(51, model="slow.gguf", value=5.0)])
    found = await get_json(client, "/api/v1/leaderboard?fingerprint=fp-a&benchmark="
                                   "throughput&metric_name=m0", seeded.auth("viewer"))
    models = [row["group"]["model"] for row in found["rows"]]
    assert models[0] == "fast.gguf" and models[-1] == "slow.gguf"


async def test_an_unknown_path_is_a_json_404(client, seeded):
    body = await get_json(client, "/api/v1/nothing-here", seeded.auth("viewer"), 404)
    assert body["error"]["code"] == "not_found"
