"""The dashboard's pages as HTML (in process; tests/web/test_dashboard_browser.py renders
them in Chromium): each is a permalink of its query string, shows what its API twin
returns, and treats bad input as the API does."""

from __future__ import annotations

import json
import re

import attrs
from support.stores import make_run
from support.web import csrf_of, login

import kitt
from kitt import Metric


async def html(client, path, auth, status=200) -> str:
    response = await client.get(path, headers=auth)
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    return await response.text()


def row_ids(page: str) -> list[str]:
    return re.findall(r'<a href="/runs/([^"]+)"><code>', page)


async def test_the_runs_page_is_the_list_endpoint_as_html(client, seeded):
    auth = seeded.auth("viewer")
    for query in ("", "?model=a.gguf", "?sort=model&limit=2", "?status=failed",
                  "?metric=throughput:m0:103:104.6"):
        api = await (await client.get(f"/api/v1/runs{query}", headers=auth)).json()
        page = await html(client, f"/runs{query}", auth)
        assert row_ids(page) == [r["id"] for r in api["runs"]], query
        assert f"{api['count']} match" in page
    # The export links keep the filters.
    page = await html(client, "/runs?model=a.gguf", auth)
    assert "/api/v1/runs-export?model=a.gguf&amp;format=csv" in page
    # A bad parameter is the API's 400, as a page.
    bad = await html(client, "/runs?limit=0", auth, 400)
    assert "limit: 0 is out of range" in bad


async def test_the_next_page_link_carries_the_filters_and_a_cursor(client, seeded):
    page = await html(client, "/runs?model=a.gguf&limit=2", seeded.auth("viewer"))
    link = re.search(r'href="(/runs\?[^"]+)" rel="next"', page)[1].replace("&amp;", "&")
    assert "model=a.gguf" in link and "cursor=" in link
    second = await html(client, link, seeded.auth("viewer"))
    assert row_ids(second) == ["run-00001"]


async def test_compare_shows_deltas_and_hides_what_did_not_change(client, seeded):
    with kitt.open_store(seeded.url) as store:
        run = make_run(20)
        changed = attrs.evolve(run.results[0], metrics=(
            Metric("m0", 10.0, "tokens/s", "higher"), *run.results[0].metrics[1:]))
        store.save_run(attrs.evolve(make_run(21), results=(changed, *run.results[1:])))
        store.save_run(attrs.evolve(run, results=(attrs.evolve(run.results[0], metrics=(
            Metric("m0", 120.0, "tokens/s", "higher"), *run.results[0].metrics[1:])),
            *run.results[1:])))
    auth = seeded.auth("viewer")
    page = await html(client, "/compare?ids=run-00020,run-00021", auth)
    assert "critical" in page and "flag-critical" in page
    every = page.count("<tr>")
    diff = await html(client, "/compare?ids=run-00020,run-00021&diff=1", auth)
    assert 0 < diff.count("<tr>") < every
    swapped = await html(client, "/compare?ids=run-00020,run-00021&baseline=run-00021", auth)
    assert 'value="run-00021" selected' in swapped
    await html(client, "/compare?ids=run-00020,run-nope", auth, 404)
    assert "Pick runs" in await html(client, "/compare", auth)


async def test_a_run_page_embeds_its_plot_data_and_links_its_files(client, seeded):
    auth = seeded.auth("viewer")
    page = await html(client, "/runs/run-00003", auth)
    data = json.loads(re.search(r'<script type="application/json" id="plot-data">(.*?)'
                                r"</script>", page, re.S)[1])
    with kitt.open_store(seeded.url) as store:
        assert data == kitt.plot_data([store.get_run("run-00003")])
    assert data["e2e"]["series"][0]["n"] == 2  # the run's two successful samples
    report = await client.get("/runs/run-00003/report.html", headers=auth)
    assert report.status == 200 and "sandbox" in report.headers["Content-Security-Policy"]
    samples = await client.get("/runs/run-00003/samples.jsonl", headers=auth)
    lines = (await samples.text()).splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["benchmark"] == "throughput"
    await html(client, "/runs/run-nope", auth, 404)


async def test_every_page_answers_and_sends_a_strict_policy(client, seeded):
    auth = seeded.auth("admin")
    for path in ("/", "/runs", "/runs/run-00001", "/compare?ids=run-00001", "/trends",
                 "/trends?pick=throughput|m0", "/models", "/settings", "/tokens", "/login"):
        response = await client.get(path, headers=auth)
        assert response.status == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert response.headers["X-Frame-Options"] == "DENY"
        text = await response.text()
        assert "<script>" not in text and " style=" not in text, path  # nothing inline


async def test_the_tokens_page_shows_a_new_secret_once(client, seeded):
    await login(client, seeded.secrets["admin"])
    csrf = csrf_of(await (await client.get("/tokens")).text())
    made = await client.post("/tokens", data={"csrf_token": csrf, "name": "from-a-form",
                                              "role": "viewer", "expires": "2w"})
    page = await made.text()
    secret = re.search(r'id="new-secret">([^<]+)<', page)[1]
    assert made.status == 201 and secret.startswith("kitt_")
    assert secret not in await (await client.get("/tokens")).text()
    bad = await client.post("/tokens", data={"csrf_token": csrf, "name": "x", "role": "root"})
    assert bad.status == 400 and "unknown role" in await bad.text()


async def test_the_settings_page_saves_and_refuses_bad_values(client, seeded):
    await login(client, seeded.secrets["admin"])
    csrf = csrf_of(await (await client.get("/settings")).text())
    saved = await client.post("/settings", data={"csrf_token": csrf, "model_dir": "/srv/m",
                                                 "results_dir": "/srv/r", "devon_url": ""},
                              allow_redirects=False)
    assert saved.status == 303
    page = await (await client.get("/settings?saved=1")).text()
    assert 'value="/srv/m"' in page and "Saved." in page
    bad = await client.post("/settings", data={"csrf_token": csrf, "model_dir": "/srv/m",
                                               "results_dir": "/srv/r",
                                               "devon_url": "not a url"})
    assert bad.status == 400 and "devon_url" in await bad.text()
