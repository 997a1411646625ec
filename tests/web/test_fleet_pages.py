"""The fleet's pages in the application: "Add agent" shows the enroll command once,
pending agents are approved through a CSRF-checked form, the quick test form narrows by
GET and launches through the same checks as the API, a job page offers cancel and its
live log, and the fleet stays closed to anonymous readers."""

from __future__ import annotations

import html
import re

from support.web import csrf_of, login, web_client
from test_api_agents import INVENTORY, bearer, beat, enroll


async def logged_in(client, seeded, role="admin") -> str:
    assert (await login(client, seeded.secrets[role])).status == 303
    return csrf_of(await (await client.get("/agents")).text())


async def test_add_agent_shows_the_command_once_and_it_enrolls(client, seeded):
    csrf = await logged_in(client, seeded)
    made = await client.post("/agents/enroll", data={"csrf_token": csrf, "name": "rack-3",
                                                     "uses": "2", "expires": "1h"})
    assert made.status == 201
    text = html.unescape(await made.text())
    command = re.search(r'id="enroll-command">([^<]+)<', text)[1]
    secret = re.search(r"KITT_ENROLL_TOKEN=(kenr_\S+) kitt-agent init --server ", command)[1]
    again = await (await client.get("/agents")).text()
    assert secret not in again
    bad = await client.post("/agents/enroll", data={"csrf_token": csrf, "uses": "0"})
    assert bad.status == 400 and "uses" in await bad.text()
    client.session.cookie_jar.clear()  # the agent's host has no browser session
    registered = await client.post("/api/v1/agent/register", json={
        "name": "gpu-09", "hostname": "h", "enrollment_token": secret})
    assert registered.status == 201
    await logged_in(client, seeded)
    assert "gpu-09" in await (await client.get("/agents")).text()


async def test_a_form_without_its_csrf_token_changes_nothing(client, seeded):
    await logged_in(client, seeded)
    refused = await client.post("/agents/enroll", data={"name": "x"})
    assert refused.status == 403
    listed = await (await client.get("/api/v1/enrollments", headers=seeded.auth("admin"))).json()
    assert listed["enrollments"] == []


async def test_a_pending_agent_is_approved_from_the_agents_page(seeded):
    async with web_client(seeded.url, open_enrollment=True) as client:
        pending = await (await client.post("/api/v1/agent/register", json={
            "name": "new", "hostname": "new.lab"})).json()
        csrf = await logged_in(client, seeded)
        page = await (await client.get("/agents")).text()
        assert f'/agents/{pending["agent_id"]}/approve' in page and "pending" in page
        done = await client.post(f"/agents/{pending['agent_id']}/approve",
                                 data={"csrf_token": csrf}, allow_redirects=False)
        assert done.status == 303
        detail = await (await client.get(f"/agents/{pending['agent_id']}")).text()
        assert 'class="status online"' in detail


async def test_the_quick_test_narrows_to_what_the_agent_can_run_and_launches(client, seeded):
    agent_id, token = await enroll(client, seeded)
    await beat(client, agent_id, token)
    csrf = await logged_in(client, seeded, "operator")
    form = await (await client.get(f"/jobs/new?agent={agent_id}")).text()
    assert "tgi — not installed on this agent" in html.unescape(form)
    narrowed = await (await client.get(f"/jobs/new?agent={agent_id}&engine=llamacpp")).text()
    models = re.findall(r'<option value="([^"]+)"[^>]*>[^<]*\((gguf|safetensors)\)', narrowed)
    assert [m for m, _ in models] == ["tiny.gguf"]  # the safetensors folder is not offered
    bad = await client.post("/jobs/new", data={
        "csrf_token": csrf, "agent": agent_id, "engine": "llamacpp", "model": "tiny.gguf",
        "mode": "native", "benchmark": "throughput", "params": '{"requests": "x"}'})
    assert bad.status == 400 and "spec.params.requests" in await bad.text()
    launched = await client.post("/jobs/new", data={
        "csrf_token": csrf, "agent": agent_id, "engine": "llamacpp", "model": "tiny.gguf",
        "mode": "native", "benchmark": "throughput", "params": '{"requests": 4}'},
        allow_redirects=False)
    assert launched.status == 303
    job_path = launched.headers["Location"]
    page = await (await client.get(job_path)).text()
    assert 'data-stream="/api/v1/jobs/' in page and ">Cancel<" in page
    job_id = job_path.rsplit("/", 1)[1]
    claimed = await client.post(f"/api/v1/agents/{agent_id}/claim?wait=0",
                                headers=bearer(token))
    assert (await claimed.json())["job"]["id"] == job_id
    cancelled = await client.post(f"{job_path}/cancel", data={"csrf_token": csrf},
                                  allow_redirects=False)
    assert cancelled.status == 303
    assert "Cancel asked" in await (await client.get(job_path)).text()


async def test_a_viewer_sees_the_fleet_but_cannot_launch(client, seeded):
    await logged_in(client, seeded, "viewer")
    assert (await client.get("/agents")).status == 200
    assert (await client.get("/jobs")).status == 200
    assert (await client.get("/jobs/new", headers={"Accept": "application/json"})).status == 403


async def test_the_fleet_is_closed_to_anonymous_readers(seeded):
    async with web_client(seeded.url, public_read=True) as client:
        overview = await (await client.get("/")).text()
        assert 'href="/agents"' not in overview
        response = await client.get("/agents", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login")


def test_inventory_fixture_is_what_an_agent_reports():
    # The pages read the same inventory the API tests send; keep them one shape.
    assert set(INVENTORY) == {"engines", "models", "profiles", "storage", "gpus"}
