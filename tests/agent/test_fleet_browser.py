"""The fleet from a real headless Chromium over HTTPS (the server's key pinned): an
admin adds an agent with the command the page shows, the agent comes online, a quick
test launched from the form runs on it, its job page follows the log live, a reload
replays the log from the start with no line lost, and the job links to its run and the
run back to the job. A second job is cancelled from its page."""

from __future__ import annotations

import os
import re
import shlex

import pytest
from support import wait_until
from support.agents import AgentProcess
from support.browser import browser

pytestmark = [pytest.mark.slow, pytest.mark.engine]


async def test_an_agent_added_and_a_quick_test_run_from_the_browser(fleet, tmp_path):
    base = fleet.url.replace("127.0.0.1", "localhost")
    spki = fleet.pin.removeprefix("sha256//")
    async with browser(tmp_path, f"--ignore-certificate-errors-spki-list={spki}") as page:
        await page.go(f"{base}/agents")
        await page.navigating(f"""document.querySelector('#token').value = {fleet.admin!r};
                                  document.querySelector('.login form').submit()""")
        await page.until("location.pathname === '/agents'")
        await page.navigating("document.querySelector('form[action=\"/agents/enroll\"]')"
                              ".submit()")
        command = await page.until("document.querySelector('#enroll-command')?.textContent")

        # Run the command the page shows, as the admin would on the GPU host.
        words = shlex.split(command)
        token = words[0].removeprefix("KITT_ENROLL_TOKEN=")
        home = tmp_path / "gpu-01"
        home.mkdir()
        agent = AgentProcess(home, tmp_path / "gpu-01.log")
        assert words[1:3] == ["kitt-agent", "init"]
        init = agent.cli(*words[2:], "--name", "gpu-01", "--models", str(fleet.model_dir),
                         env={"KITT_ENROLL_TOKEN": token})
        assert init.returncode == 0, init.stderr
        fleet.agents.append(agent.start())
        wait_until(lambda: fleet.reported(agent), 60, "the agent's first heartbeat")
        await page.go(f"{base}/agents")
        assert await page.until("document.querySelector('td .status')?.textContent") \
            in ("online", "busy")

        # The quick test: agent, then engine (narrowing by GET), then model and benchmark.
        agent_id = fleet.agent_id(agent)
        await page.go(f"{base}/jobs/new?agent={agent_id}&engine=llamacpp")
        await page.navigating("""(() => {
            const f = document.querySelector('#launch');
            f.querySelector('[name=model]').value = 'kitt-tiny.gguf';
            f.querySelector('[name=benchmark]').value = 'throughput';
            f.querySelector('[name=params]').value =
                '{"requests": 60, "concurrency": 2, "max_tokens": 32, "warmup_requests": 1}';
            f.submit(); })()""")
        job_path = await page.until("location.pathname.startsWith('/jobs/job_') && "
                                    "location.pathname")
        job_id = job_path.rsplit("/", 1)[1]
        await page.until("document.querySelector('#job-log').textContent.includes("
                         "'running throughput')", timeout_ms=120000)
        await page.go(f"{base}{job_path}")  # a reload mid-job: the log replays from byte 0
        await page.until("document.querySelector('#job-log').dataset.ended === 'true' || "
                         "document.querySelector('#job-state').textContent === 'succeeded'",
                         timeout_ms=180000)
        await page.until("document.querySelector('#job-log')?.dataset.ended === 'true'",
                         timeout_ms=60000)
        shown = await page.evaluate("document.querySelector('#job-log').textContent")
        spool = (agent.spool(job_id) / "log").read_text()
        assert shown == spool  # every line, once, in order
        assert await page.evaluate("document.querySelector('#job-state').textContent") \
            == "succeeded"
        run_link = await page.until("document.querySelector('#job-run')?.href")
        await page.go(run_link)
        assert await page.until("document.querySelector('#run-job')?.textContent") == job_id

        # A long job, cancelled from its page.
        long_job = fleet.submit(agent, {"benchmark": "throughput", "params": {
            "requests": 100000, "concurrency": 2, "max_tokens": 32}})
        await page.go(f"{base}/jobs/{long_job}")
        await page.until("document.querySelector('#job-log').textContent.includes("
                         "'running throughput')", timeout_ms=120000)
        await page.navigating("document.querySelector('form[action$=\"/cancel\"]').submit()")
        await page.until("document.querySelector('#job-state').textContent === 'cancelled'",
                         timeout_ms=120000)
        reason = fleet.job(long_job)["reason"]
        assert re.search(r"cancelled from the server", reason), reason
        if os.environ.get("KITT_SCREENSHOTS"):
            from pathlib import Path

            shots = Path(os.environ["KITT_SCREENSHOTS"])
            for name, path in (("agents", "/agents"), ("agent", f"/agents/{agent_id}"),
                               ("job", job_path), ("jobs", "/jobs"),
                               ("quick-test", f"/jobs/new?agent={agent_id}&engine=llamacpp")):
                await page.go(base + path)
                await page.screenshot(shots / f"{name}.png")
