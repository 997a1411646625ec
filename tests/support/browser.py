"""Headless Chromium driven over the DevTools protocol, for tests that must see a page
as a person's browser renders it: console errors, network requests, element sizes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from support import require

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")


    async def go(self, url: str) -> None:
        """Navigate and wait for the new page's load event (redirects followed)."""
        self._forget_loads()
        await self.send("Page.navigate", url=url)
        await self.wait_for("Page.loadEventFired")

    async def navigating(self, expression: str) -> None:
        """Run `expression` (a click, a form's submit) and wait for the page it leads to."""
        self._forget_loads()
        await self.evaluate(expression)
        await self.wait_for("Page.loadEventFired")

    def _forget_loads(self) -> None:
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]

    async def until(self, condition: str, timeout_ms: int = 20000) -> Any:
        """Wait, inside the page, until the JavaScript expression `condition` is truthy
        (re-checked on every DOM change and animation frame); its value. The test waits on
        the page's own state, never on a sleep."""
        script = f"""new Promise((resolve, reject) => {{
            const check = () => {{ try {{ return ({condition}); }} catch (e) {{ return null; }} }};
            const first = check();
            if (first) return resolve(first);
            const seen = new MutationObserver(() => {{ const v = check();
                if (v) {{ seen.disconnect(); resolve(v); }} }});
            seen.observe(document, {{subtree: true, childList: true, attributes: true}});
            const tick = () => {{ const v = check(); if (v) {{ seen.disconnect(); resolve(v); }}
                else requestAnimationFrame(tick); }};
            requestAnimationFrame(tick);
            setTimeout(() => {{ seen.disconnect();
                reject(new Error("timed out waiting for: " + {condition!r})); }}, {timeout_ms});
        }})"""
        result = await self.send("Runtime.evaluate", expression=script, awaitPromise=True,
                                 returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"].get("exception", {})
                                 .get("description", result["exceptionDetails"]))
        return result["result"].get("value")

    async def screenshot(self, path: Path, width: int = 1280) -> None:
        import base64

        height = await self.evaluate("document.documentElement.scrollHeight")
        await self.send("Emulation.setDeviceMetricsOverride", width=width,
                        height=min(int(height), 4000), deviceScaleFactor=1, mobile=False)
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        await self.send("Emulation.clearDeviceMetricsOverride")


def start_chromium(profile: Path, *flags: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--window-size=1280,1000", *flags, "about:blank"],
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


async def inspect(page: Page, url: str, screenshot: Path) -> dict[str, Any]:
    await page.go(url)
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
    await page.screenshot(screenshot)
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


def open_in_browser(page: Path, workdir: Path) -> dict[str, Any]:
    """Render `page` in a fresh headless Chromium; facts about it, `problems` (console
    errors, uncaught exceptions, network requests) and a screenshot beside it."""
    async def look() -> dict[str, Any]:
        async with browser(workdir) as tab:
            return await inspect(tab, page.as_uri(), page.with_suffix(".png"))

    facts = asyncio.run(look())
    facts["problems"] = problems(facts.pop("events"), page.as_uri())
    return facts


@contextlib.asynccontextmanager
async def browser(workdir: Path, *flags: str) -> AsyncIterator[Page]:
    """A fresh headless Chromium (its own profile: no cookies from elsewhere) and its first
    tab, with Page, Runtime, Log and Network events recorded in `page.events`."""
    import aiohttp

    require("chromium", CHROMIUM is not None,
            "install it: apt-get install -y --no-install-recommends chromium")
    profile = workdir / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    process, port = start_chromium(profile, *flags)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"],
                                          max_msg_size=0) as ws:
                page = Page(ws)
                for domain in ("Page", "Runtime", "Log", "Network"):
                    await page.send(f"{domain}.enable")
                yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
