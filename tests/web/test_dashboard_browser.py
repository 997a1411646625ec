"""The dashboard in a real headless Chromium, over HTTPS with KITT's own certificate
(pinned by its key, as a user trusting the printed fingerprint would): log in, filter,
page, pick and compare runs, every page's plots drawn with data, no console error, no
request to any other host, CSRF refused without its token, and a session that ends.

The store holds real `kitt run`s on the tiny model (llama-server) and generated volume.
Screenshots go to KITT_SCREENSHOTS when set (docs/images/ is made that way)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from support import free_port, run_kitt
from support.browser import browser
from support.engines import need_llama_server
from support.runs import T0
from support.runs import make_run as realistic_run
from support.web import TOKEN, start_web

import kitt
from kitt_web.tls import spki_sha256

pytestmark = [pytest.mark.slow, pytest.mark.engine]
SHOTS = Path(os.environ["KITT_SCREENSHOTS"]) if os.environ.get("KITT_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, tiny_model):
    """A store with two real runs and 120 generated ones, and `kitt web` serving it."""
    need_llama_server()
    work = tmp_path_factory.mktemp("dashboard")
    env = {"KITT_HOME": str(work / "home"), "KITT_STORE": "", "KITT_AUTH_TOKEN": "",
           "XDG_CACHE_HOME": str(work / "cache")}
    url = f"sqlite://{work / 'karr.db'}"
    real = []
    for _ in range(2):
        result = run_kitt("run", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                          "-s", "quick", "--store", url, "--json", env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        import json

        real.append(json.loads(result.stdout)["run"]["id"])
    with kitt.open_store(url) as store:
        store.save_runs([
            realistic_run(f"gen{i:04d}aaaaaaaa", scale=1.0 + (i % 7) * 0.03, repeats=2,
                          requests=200, engine="llamacpp" if i % 3 else "vllm",
                          started=T0 + timedelta(hours=i))
            for i in range(120)])
    port = free_port()
    web, said = start_web("--port", str(port), "--store", url, env=env, log=work / "web.log")
    secret = TOKEN.search(said)[0]
    server_cert = work / "home" / "web" / "tls" / "server.pem"
    yield {"base": f"https://localhost:{port}", "secret": secret, "real": real,
           "pin": spki_sha256(server_cert), "url": url, "work": work}
    web.stop()


def foreign_requests(page, base: str) -> list[str]:
    return [e["params"]["request"]["url"] for e in page.events
            if e.get("method") == "Network.requestWillBeSent"
            and not e["params"]["request"]["url"].startswith((base + "/", "data:"))]


def console_problems(page) -> list[str]:
    found = []
    for event in page.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(params["exceptionDetails"].get("exception", {}).get("description")
                         or params["exceptionDetails"].get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                              "assert"):
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"log: {params['entry'].get('text')}")
    return found


async def shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(SHOTS / f"{name}.png")


async def test_the_dashboard_end_to_end(dashboard, tmp_path):
    base = dashboard["base"]
    async with browser(tmp_path, f"--ignore-certificate-errors-spki-list={dashboard['pin']}"
                       ) as page:
        # Not logged in: a page sends the browser to the login form, keeping the target.
        await page.go(f"{base}/runs?engine=llamacpp")
        assert await page.evaluate("location.pathname") == "/login"
        await shot(page, "login")
        await page.navigating(f"""document.querySelector('#token').value =
                                  {dashboard['secret']!r};
                                  document.querySelector('.login form').submit()""")
        await page.until("location.pathname === '/runs' && document.querySelector('table.runs')")
        assert await page.evaluate("location.search") == "?engine=llamacpp"
        cookies = (await page.send("Network.getCookies"))["cookies"]
        session = next(c for c in cookies if c["name"] == "__Host-kitt_session")
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"

        # Runs: the filter narrows the table in place (htmx) and the URL is a permalink.
        await page.go(f"{base}/runs")
        assert await page.evaluate("document.querySelectorAll('table.runs tbody tr').length") \
            == 50
        assert await page.evaluate("document.querySelector('h1 small').textContent") \
            == "122 match"
        await page.evaluate("""(() => { const f = document.querySelector('#filters');
            f.querySelector('[name=engine]').value = 'vllm';
            f.dispatchEvent(new Event('change', {bubbles: true})); })()""")
        await page.until("location.search.includes('engine=vllm')")
        engines = await page.until("""(() => { const cells = [...document.querySelectorAll(
            'table.runs tbody tr td:nth-child(4)')].map(td => td.textContent.trim());
            return cells.length && cells.every(c => c.startsWith('vllm')) && cells; })()""")
        assert len(engines) == 40
        await shot(page, "runs")

        # Paging: the next page holds other runs.
        await page.go(f"{base}/runs?limit=25")
        first = await page.evaluate("[...document.querySelectorAll('table.runs tbody tr')]"
                                    ".map(r => r.cells[1].textContent.trim())")
        await page.navigating("document.querySelector('#next-page').click()")
        second = await page.until("""(() => { const ids = [...document.querySelectorAll(
            'table.runs tbody tr')].map(r => r.cells[1].textContent.trim());
            return location.search.includes('cursor=') && ids.length === 25 && ids; })()""")
        assert not set(first) & set(second)

        # Pick two runs and compare them.
        real = dashboard["real"]
        await page.go(f"{base}/runs?limit=200")
        await page.navigating(f"""(() => {{ for (const id of {real!r}) document.querySelector(
            'input[name=ids][value="' + id + '"]').checked = true;
            document.querySelector('button[form=compare-form]').click(); }})()""")
        await page.until("location.pathname === '/compare' && document.querySelector("
                         "'table.compare')")
        columns = await page.evaluate("document.querySelectorAll('table.compare thead th')"
                                      ".length")
        assert columns == 3 + 2
        await shot(page, "compare")

        # A real run's page: its plots are drawn (uPlot canvases) from its samples.
        await page.go(f"{base}/runs/{real[0]}")
        drawn = await page.until("""document.documentElement.dataset.chartsReady && (() => {
            const plots = [...document.querySelectorAll('figure.plot')];
            return plots.length && plots.map(f => ({id: f.id,
                canvas: !!f.querySelector('canvas'),
                points: Number(f.querySelector('.chart').dataset.points)})); })()""")
        ids = {p["id"] for p in drawn}
        assert {"plot-e2e-cdf", "plot-ttft-cdf"} <= ids, ids
        assert all(p["canvas"] and p["points"] > 0 for p in drawn), drawn
        await shot(page, "run")
        report = await page.evaluate("document.querySelector('a[href$=\"report.html\"]').href")
        await page.go(report)
        assert "KITT report" in await page.evaluate("document.title")

        # Generated runs carry every plot kind.
        await page.go(f"{base}/runs/gen0001aaaaaaaa")
        drawn = await page.until("""document.documentElement.dataset.chartsReady &&
            [...document.querySelectorAll('figure.plot')].map(f => f.id)""")
        assert {"plot-itl", "plot-throughput", "plot-memory", "plot-quality"} <= set(drawn)

        # Trends and the leaderboard.
        fingerprint = "rtx4090-24gb_i9-13900k_64gb-ddr5_nvme_ubuntu24.04"
        await page.go(f"{base}/trends?pick=throughput|output_tokens_per_s&engine=llamacpp"
                      f"&fingerprint={fingerprint}")
        points = await page.until("document.documentElement.dataset.chartsReady && "
                                  "document.querySelector('#plot-trend .chart')?.dataset.points")
        assert int(points) == 80
        assert await page.evaluate("document.querySelectorAll('h2').length") == 2
        await shot(page, "trends")

        for path in ("/", "/models", "/settings", "/tokens"):
            await page.go(base + path)
            assert await page.evaluate("document.querySelector('h1') !== null"), path
            await shot(page, path.strip("/") or "overview")

        # Tokens: one made in the page is shown once.
        await page.go(f"{base}/tokens")
        await page.navigating("""(() => {
            const f = document.querySelector('form[action="/tokens"]');
            f.querySelector('[name=name]').value = 'from-the-browser';
            f.querySelector('[name=role]').value = 'viewer'; f.submit(); })()""")
        secret = await page.until("document.querySelector('#new-secret')?.textContent")
        assert TOKEN.fullmatch(secret.strip())
        await page.go(f"{base}/tokens")
        assert secret not in await page.evaluate("document.body.innerHTML")

        assert console_problems(page) == []
        assert foreign_requests(page, base) == []

        # CSRF: the session's own fetch without the token is refused, with it accepted.
        statuses = await page.evaluate("""(async () => {
            const body = JSON.stringify({devon_tab: true});
            const headers = {'Content-Type': 'application/json'};
            const bare = await fetch('/api/v1/settings', {method: 'PATCH', body, headers});
            headers['X-CSRF-Token'] = document.querySelector('meta[name=csrf-token]').content;
            const good = await fetch('/api/v1/settings', {method: 'PATCH', body, headers});
            return [bare.status, good.status]; })()""", )
        assert statuses == [403, 200]

        # The session ends (its time is up): the next page asks for a login again.
        with kitt.open_store(dashboard["url"]) as store:
            from kitt_web.state import open_state

            with open_state(store).transaction() as cur:
                cur.execute("UPDATE web_sessions SET expires_at = 0")
        await page.go(f"{base}/runs")
        assert await page.evaluate("location.pathname") == "/login"


def test_the_pages_escape_what_runs_hold(dashboard, tmp_path):
    """A model name is data, never markup: it shows as text and runs nothing."""
    import asyncio

    hostile = '<img src=x onerror="document.title=`pwned`">'
    with kitt.open_store(dashboard["url"]) as store:
        import attrs

        run = attrs.evolve(realistic_run("hostile00000", repeats=1, requests=10),
                           model=hostile)
        store.save_run(run)

    async def check():
        async with browser(tmp_path,
                           f"--ignore-certificate-errors-spki-list={dashboard['pin']}") as page:
            await page.send("Network.setExtraHTTPHeaders",
                            headers={"Authorization": f"Bearer {dashboard['secret']}"})
            await page.go(f"{dashboard['base']}/runs/hostile00000")
            title = await page.evaluate("document.title")
            shown = await page.evaluate("document.querySelector('dl.fields dd').textContent")
            return title, shown

    title, shown = asyncio.run(check())
    assert "pwned" not in title and shown == hostile
