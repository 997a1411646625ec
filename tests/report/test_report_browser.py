"""report.html in a real browser: headless Chromium driven over the DevTools protocol.

Checks what only rendering shows: no console errors, no network requests at all (the page
must open offline), every plot an SVG with a real on-screen size, and the tables holding
the metric values. A screenshot is written beside the page for people to look at.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import require
from reportfixtures import make_run

from kitt.report import render_report
from kitt.results import format_value

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.slow


class Page:
    """The smallest DevTools client: commands by id, every event kept for later checks."""

    def __init__(self, ws: Any):
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._next = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        await self.ws.send_json({"id": self._next, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), timeout=30)
            if message.get("id") == self._next:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    async def wait_for(self, event: str, timeout: float = 30) -> None:
        if any(e.get("method") == event for e in self.events):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = await asyncio.wait_for(self.ws.receive_json(), timeout=timeout)
            self.events.append(message)
            if message.get("method") == event:
                return
        raise TimeoutError(event)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")


def start_chromium(profile: Path) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"  # chromium writes its chosen port here
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return process, int(port_file.read_text().split()[0])
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        time.sleep(0.1)
    process.kill()
    raise TimeoutError("chromium did not open its DevTools port")


async def inspect(port: int, url: str, screenshot: Path) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        target = next(t for t in targets if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                await page.send(f"{domain}.enable")
            await page.send("Page.navigate", url=url)
            await page.wait_for("Page.loadEventFired")
            facts = await page.evaluate("""(() => {
                const box = e => { const r = e.getBoundingClientRect();
                                   return [r.width, r.height]; };
                return {
                  title: document.title,
                  plots: [...document.querySelectorAll('figure[id^="plot-"]')].map(f => ({
                    id: f.id, svgs: f.querySelectorAll('svg').length,
                    size: f.querySelector('svg') ? box(f.querySelector('svg')) : [0, 0],
                    paths: f.querySelectorAll('svg path, svg use').length})),
                  cells: [...document.querySelectorAll('td')].map(td => td.textContent.trim()),
                  critical: document.querySelectorAll('td.flag.critical').length,
                  overflowX: document.documentElement.scrollWidth > window.innerWidth,
                };
            })()""")
            height = await page.evaluate("document.documentElement.scrollHeight")
            await page.send("Emulation.setDeviceMetricsOverride", width=1280,
                            height=min(int(height), 6000), deviceScaleFactor=1, mobile=False)
            shot = await page.send("Page.captureScreenshot", format="png")
            import base64

            screenshot.write_bytes(base64.b64decode(shot["data"]))
            facts["events"] = page.events
            return facts


def problems(events: list[dict[str, Any]], page_url: str) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(f"uncaught: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"log: {params['entry'].get('text')}")
        elif method == "Network.requestWillBeSent":
            requested = params["request"]["url"]
            if requested != page_url and not requested.startswith("data:"):
                found.append(f"network request: {requested}")
    return found


def render_in_browser(tmp_path: Path, runs: list) -> dict[str, Any]:
    require("chromium", CHROMIUM is not None,
            "install it: apt-get install -y --no-install-recommends chromium")
    pytest.importorskip("aiohttp")
    page = tmp_path / "report.html"
    page.write_text(render_report(runs), encoding="utf-8")
    profile = tmp_path / "profile"
    profile.mkdir()
    process, port = start_chromium(profile)
    try:
        facts = asyncio.run(inspect(port, page.as_uri(), tmp_path / "report.png"))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    facts["problems"] = problems(facts.pop("events"), page.as_uri())
    return facts


def test_single_run_report_renders_cleanly(tmp_path):
    run = make_run(requests=1500, failed_benchmark=True)
    facts = render_in_browser(tmp_path, [run])
    assert facts["problems"] == []
    assert facts["title"].startswith("KITT report: Qwen2.5-0.5B")
    assert [p["id"] for p in facts["plots"]] == [
        "plot-e2e", "plot-ttft", "plot-itl", "plot-throughput", "plot-memory", "plot-quality"]
    for plot in facts["plots"]:
        width, height = plot["size"]
        assert plot["svgs"] == 1 and width > 300 and height > 100, plot
        assert plot["paths"] > 10, plot  # drawn shapes, not an empty frame
    cells = set(facts["cells"])
    perf = run.results[0]
    for name in ("ttft_p99", "output_tokens_per_s", "e2e_p50"):
        assert format_value(perf.metric(name).value) in cells, name
    assert "engine returned HTTP 500 on item 17" in cells
    assert not facts["overflowX"], "the page scrolls sideways at 1280 px"
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_comparison_report_renders_cleanly(tmp_path):
    base = make_run("0123456789ab", requests=800)
    slow = make_run("fedcba987654", requests=800, scale=1.2)
    facts = render_in_browser(tmp_path, [base, slow])
    assert facts["problems"] == []
    assert len(facts["plots"]) == 6
    assert facts["critical"] > 0
    assert any(cell.endswith("(+20.0%) critical") for cell in facts["cells"])


def test_problems_are_detected(tmp_path):
    """The checker itself: a page that errors and fetches must be caught."""
    require("chromium", CHROMIUM is not None, "chromium is not installed")
    pytest.importorskip("aiohttp")
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png">'
                    "<script>console.error('boom'); undefinedThing();</script></body></html>")
    profile = tmp_path / "profile"
    profile.mkdir()
    process, port = start_chromium(profile)
    try:
        facts = asyncio.run(inspect(port, page.as_uri(), tmp_path / "bad.png"))
    finally:
        process.terminate()
        process.wait(timeout=10)
    found = json.dumps(problems(facts["events"], page.as_uri()))
    assert "console.error" in found and "uncaught" in found and "network request" in found
