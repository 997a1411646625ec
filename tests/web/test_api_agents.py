"""The agent protocol and the jobs API through HTTP, every response checked against the
OpenAPI document: enrollment, pending agents, job specs refused when queued (400 naming
the field), idempotent claims, log chunks by offset and the live log with replay, result
upload, cancel, revoke, rotation, and credentials that do not fit the route."""

from __future__ import annotations

import hashlib
import json

import pytest
from support.stores import make_run
from support.web import web_client

import kitt

INVENTORY = {
    "engines": {"llamacpp": {"modes": ["native"], "unavailable": {"docker": "no Docker"},
                             "formats": ["gguf"]}},
    "models": [{"name": "tiny.gguf", "path": "/models/tiny.gguf", "format": "gguf",
                "bytes": 1},
               {"name": "tiny-hf", "path": "/models/tiny-hf", "format": "safetensors",
                "bytes": 1}],
    "profiles": ["llamacpp-32k"], "storage": {"dir": "/models", "free_bytes": 1},
    "gpus": [],
}
RUN = {"model": "tiny.gguf", "engine": "llamacpp", "benchmark": "throughput",
       "params": {"requests": 4, "concurrency": 2}}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def enroll(client, seeded, name="gpu-01", *, uses=1) -> tuple[str, str]:
    made = await client.post("/api/v1/enrollments", json={"name": "rack", "uses": uses},
                             headers=seeded.auth("admin"))
    assert made.status == 201
    secret = (await made.json())["secret"]
    registered = await client.post("/api/v1/agent/register", json={
        "name": name, "hostname": f"{name}.lab", "version": "0.1.0",
        "hardware": {"fingerprint": "fp-1"}, "enrollment_token": secret})
    assert registered.status == 201, await registered.text()
    body = await registered.json()
    return body["agent_id"], body["token"]


async def beat(client, agent_id, token, **body):
    response = await client.post(f"/api/v1/agents/{agent_id}/heartbeat",
                                 json={"inventory": INVENTORY, **body}, headers=bearer(token))
    return response.status, await response.json()


async def submit(client, seeded, agent_id, spec, role="operator"):
    response = await client.post("/api/v1/jobs", json={"agent": agent_id, "spec": spec},
                                 headers=seeded.auth(role))
    return response.status, await response.json()


async def claim(client, agent_id, token):
    response = await client.post(f"/api/v1/agents/{agent_id}/claim?wait=0",
                                 headers=bearer(token))
    return None if response.status == 204 else (await response.json())["job"]


async def test_enrollment_gives_a_command_with_the_token_in_the_environment(client, seeded):
    made = await client.post("/api/v1/enrollments", json={"name": "rack"},
                             headers=seeded.auth("admin"))
    body = await made.json()
    assert body["secret"].startswith("kenr_") and body["enrollment"]["uses_allowed"] == 1
    command = body["command"]
    assert command.startswith(f"KITT_ENROLL_TOKEN={body['secret']} kitt-agent init ")
    assert "--server http://127.0.0.1:" in command and body["secret"] not in command.split(
        " ", 1)[1]
    listed = await (await client.get("/api/v1/enrollments", headers=seeded.auth("admin"))).json()
    assert body["secret"] not in json.dumps(listed)
    assert (await client.get("/api/v1/enrollments", headers=seeded.auth("operator"))).status \
        == 403


async def test_a_single_use_token_enrolls_one_agent(client, seeded):
    made = await (await client.post("/api/v1/enrollments", json={"name": "one"},
                                    headers=seeded.auth("admin"))).json()
    body = {"name": "a", "hostname": "a", "enrollment_token": made["secret"]}
    assert (await client.post("/api/v1/agent/register", json=body)).status == 201
    again = await client.post("/api/v1/agent/register", json={**body, "name": "b"})
    assert again.status == 401
    assert (await again.json())["error"]["code"] == "bad_enrollment"


async def test_without_a_token_registration_needs_open_enrollment(client):
    refused = await client.post("/api/v1/agent/register", json={"name": "a", "hostname": "a"})
    assert refused.status == 403
    error = (await refused.json())["error"]
    assert error["code"] == "enrollment_required" and "KITT_ENROLL_TOKEN" in error["hint"]


async def test_a_pending_agent_gets_no_job_until_approved(seeded):
    async with web_client(seeded.url, open_enrollment=True) as client:
        registered = await (await client.post("/api/v1/agent/register", json={
            "name": "new", "hostname": "new.lab"})).json()
        agent_id, token = registered["agent_id"], registered["token"]
        assert registered["state"] == "pending"
        status, reply = await beat(client, agent_id, token)
        assert status == 200 and reply["state"] == "pending"
        listed = await (await client.get("/api/v1/agents", headers=seeded.auth("viewer"))).json()
        assert [a["status"] for a in listed["agents"]] == ["pending"]
        queued = await client.post("/api/v1/jobs", json={"spec": RUN},
                                   headers=seeded.auth("operator"))
        assert queued.status == 201
        assert await claim(client, agent_id, token) is None
        assert (await client.post(f"/api/v1/agents/{agent_id}/approve",
                                  headers=seeded.auth("operator"))).status == 403
        approved = await client.post(f"/api/v1/agents/{agent_id}/approve",
                                     headers=seeded.auth("admin"))
        assert (await approved.json())["agent"]["state"] == "active"
        assert (await claim(client, agent_id, token))["id"] == (await queued.json())["job"]["id"]


@pytest.mark.parametrize(("spec", "field", "says"), [
    ({**RUN, "engine": "nope"}, "spec.engine", "unknown engine 'nope'"),
    ({**RUN, "engine": "vllm"}, "spec.engine", "agent gpu-01 has no vllm engine"),
    ({**RUN, "model": "missing.gguf"}, "spec.model", "has no model 'missing.gguf'"),
    ({**RUN, "model": "tiny-hf"}, "spec.model", "tiny-hf is safetensors"),
    ({**RUN, "mode": "docker"}, "spec.mode", "no Docker"),
    ({**RUN, "params": {"requests": "many"}}, "spec.params.requests", "expected int"),
    ({**RUN, "params": {"bogus": 1}}, "spec.params.bogus", "unknown parameter"),
    ({**RUN, "benchmark": "nope"}, "spec.benchmark", "unknown benchmark"),
    ({**RUN, "options": {"extra_args": "--evil"}}, "spec.options", "no option 'extra_args'"),
    ({**RUN, "image": "evil:latest"}, "spec.image", "not a field"),
    ({**RUN, "profile": "nope"}, "spec.profile", "unknown profile"),
    ({**RUN, "suite": "quick"}, "spec.suite", "either suite"),
    ({"model": "tiny.gguf", "engine": "llamacpp", "suite": "nope"}, "spec.suite",
     "unknown suite"),
    ({**RUN, "runs": 0}, "spec.runs", "1 to 100"),
    ({**RUN, "model": "a\nb"}, "spec.model", "single-line"),
])
async def test_a_spec_is_refused_when_queued_naming_the_field(client, seeded, spec, field,
                                                              says):
    agent_id, token = await enroll(client, seeded)
    await beat(client, agent_id, token)
    status, body = await submit(client, seeded, agent_id, spec)
    assert status == 400, body
    assert body["error"]["message"].startswith(f"{field}:"), body
    assert says in body["error"]["message"] + (body["error"]["hint"] or ""), body
    assert await claim(client, agent_id, token) is None


async def test_a_viewer_cannot_queue_and_the_spec_is_resolved_for_the_agent(client, seeded):
    agent_id, token = await enroll(client, seeded)
    await beat(client, agent_id, token)
    assert (await submit(client, seeded, agent_id, RUN, role="viewer"))[0] == 403
    status, body = await submit(client, seeded, agent_id, {**RUN, "engine": "llama_cpp"})
    assert status == 201
    spec = body["job"]["spec"]
    assert spec["engine"] == "llamacpp"  # the alias, stored as the engine's own name
    [benchmark] = spec["suite"]["benchmarks"]
    assert benchmark["name"] == "throughput" and benchmark["params"]["requests"] == 4
    assert benchmark["params"]["max_tokens"] == 128  # every parameter explicit


async def test_claims_are_idempotent_and_a_job_for_one_agent_is_not_anothers(client, seeded):
    one, one_token = await enroll(client, seeded, "one")
    two, two_token = await enroll(client, seeded, "two")
    await beat(client, one, one_token)
    _, body = await submit(client, seeded, one, RUN)
    assert await claim(client, two, two_token) is None
    first = await claim(client, one, one_token)
    again = await claim(client, one, one_token)
    assert first["id"] == again["id"] == body["job"]["id"] and again["attempt"] == 1
    assert first["spec"]["model"] == "tiny.gguf"


async def running_job(client, seeded):
    agent_id, token = await enroll(client, seeded)
    await beat(client, agent_id, token)
    _, body = await submit(client, seeded, agent_id, RUN)
    job = await claim(client, agent_id, token)
    assert job["id"] == body["job"]["id"]
    state = await client.post(f"/api/v1/agents/{agent_id}/jobs/{job['id']}/state",
                              json={"state": "running"}, headers=bearer(token))
    assert (await state.json())["job"]["state"] == "running"
    return agent_id, token, job["id"]


async def put_log(client, agent_id, token, job_id, offset, data: bytes):
    response = await client.put(f"/api/v1/agents/{agent_id}/jobs/{job_id}/log?offset={offset}",
                                data=data, headers={**bearer(token), "Content-Type":
                                                    "application/octet-stream"})
    return response.status, await response.json()


async def test_log_chunks_follow_the_spool_by_offset(client, seeded):
    agent_id, token, job_id = await running_job(client, seeded)
    assert await put_log(client, agent_id, token, job_id, 0, b"line 1\n") == (200, {"offset": 7})
    assert await put_log(client, agent_id, token, job_id, 0, b"line 1\n") == (200, {"offset": 7})
    status, body = await put_log(client, agent_id, token, job_id, 99, b"later\n")
    assert status == 409 and body["offset"] == 7
    assert (await put_log(client, agent_id, token, job_id, 7, "é 2\n".encode()))[1] == \
        {"offset": 12}
    text = await client.get(f"/api/v1/jobs/{job_id}/log", headers=seeded.auth("viewer"))
    assert await text.text() == "line 1\né 2\n" and text.headers["X-Log-Bytes"] == "12"
    tail = await client.get(f"/api/v1/jobs/{job_id}/log?offset=7", headers=seeded.auth("viewer"))
    assert await tail.text() == "é 2\n"


async def read_events(response) -> list[tuple[str, str, str]]:
    """(id, event, data) of each event until the stream ends."""
    events, fields = [], {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "event" in fields:
                events.append((fields.get("id", ""), fields["event"],
                               "\n".join(fields.get("data", []))))
            fields = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(": ")
        if key == "data":
            fields.setdefault("data", []).append(value)
        else:
            fields[key] = value
    return events


async def test_the_live_log_replays_from_last_event_id_and_ends_with_the_job(client, seeded):
    agent_id, token, job_id = await running_job(client, seeded)
    await put_log(client, agent_id, token, job_id, 0, b"one\ntwo\n")
    await put_log(client, agent_id, token, job_id, 8, b"three\n")
    await client.post(f"/api/v1/agents/{agent_id}/jobs/{job_id}/state",
                      json={"state": "succeeded", "exit_code": 0}, headers=bearer(token))
    stream = await client.get(f"/api/v1/jobs/{job_id}/log", headers={
        **seeded.auth("viewer"), "Accept": "text/event-stream"})
    assert stream.headers["Content-Type"] == "text/event-stream"
    events = await read_events(stream)
    assert events == [("8", "log", "one\ntwo\n"), ("14", "log", "three\n"),
                      ("14", "end", "succeeded")]
    resumed = await client.get(f"/api/v1/jobs/{job_id}/log", headers={
        **seeded.auth("viewer"), "Accept": "text/event-stream", "Last-Event-ID": "8"})
    assert await read_events(resumed) == [("14", "log", "three\n"), ("14", "end", "succeeded")]


async def test_a_result_is_checksummed_and_stored_once(client, seeded):
    agent_id, token, job_id = await running_job(client, seeded)
    path = f"/api/v1/agents/{agent_id}/jobs/{job_id}/result"
    document = kitt.to_json(make_run(77)).encode()

    async def upload(data: bytes, digest: str | None = None):
        response = await client.put(path, data=data, headers={
            **bearer(token), "Content-Type": "application/json",
            "X-Content-SHA256": digest or hashlib.sha256(data).hexdigest()})
        return response.status, await response.json()

    status, body = await upload(document, "0" * 64)
    assert status == 400 and "X-Content-SHA256" in body["error"]["message"]
    status, body = await upload(b'{"not": "a run"}')
    assert status == 400 and "not a KITT run document" in body["error"]["message"]
    assert await upload(document) == (200, {"run_id": make_run(77).id, "stored": True})
    assert await upload(document) == (200, {"run_id": make_run(77).id, "stored": False})
    other = kitt.to_json(make_run(77, model="other.gguf")).encode()
    assert (await upload(other))[0] == 409
    job = await (await client.get(f"/api/v1/jobs/{job_id}", headers=seeded.auth("viewer"))).json()
    assert job["job"]["run_id"] == make_run(77).id
    stored = await client.get(f"/api/v1/runs/{make_run(77).id}", headers=seeded.auth("viewer"))
    assert (await stored.json())["model"] == make_run(77).model


async def test_cancel_reaches_the_agent_in_its_heartbeat(client, seeded):
    agent_id, token, job_id = await running_job(client, seeded)
    assert (await client.post(f"/api/v1/jobs/{job_id}/cancel",
                              headers=seeded.auth("viewer"))).status == 403
    asked = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=seeded.auth("operator"))
    assert (await asked.json())["job"]["cancel_requested_at"] is not None
    _, reply = await beat(client, agent_id, token, running=[job_id])
    assert reply["cancel"] == [job_id]
    done = await client.post(f"/api/v1/agents/{agent_id}/jobs/{job_id}/state",
                             json={"state": "cancelled", "reason": "stopped"},
                             headers=bearer(token))
    assert (await done.json())["job"]["state"] == "cancelled"
    assert (await client.post(f"/api/v1/jobs/{job_id}/cancel",
                              headers=seeded.auth("operator"))).status == 200  # no-op
    await submit(client, seeded, agent_id, RUN)
    second = await claim(client, agent_id, token)
    await client.post(f"/api/v1/agents/{agent_id}/jobs/{second['id']}/state",
                      json={"state": "succeeded"}, headers=bearer(token))
    late = await client.post(f"/api/v1/jobs/{second['id']}/cancel",
                             headers=seeded.auth("operator"))
    assert late.status == 409 and "already succeeded" in (await late.json())["error"]["message"]


async def test_credentials_that_do_not_fit_the_route_are_refused(client, seeded):
    agent_id, token = await enroll(client, seeded)
    forged = await client.post(f"/api/v1/agents/{agent_id}/heartbeat", json={},
                               headers=bearer("kagt_" + "A" * 43))
    assert forged.status == 401 and (await forged.json())["error"]["code"] == "bad_token"
    person = await client.post(f"/api/v1/agents/{agent_id}/heartbeat", json={},
                               headers=seeded.auth("admin"))
    assert person.status == 401
    assert (await client.get("/api/v1/runs", headers=bearer(token))).status == 401
    assert (await client.get("/api/v1/agents", headers=bearer(token))).status == 401
    unknown = await client.post("/api/v1/agents/agt_000000000000/heartbeat", json={},
                                headers=bearer(token))
    assert unknown.status == 404
    assert "enroll again" in (await unknown.json())["error"]["hint"]
    bare = await client.post(f"/api/v1/agents/{agent_id}/heartbeat", json={})
    assert bare.status == 401


async def test_revoking_an_agent_ends_its_job_and_refuses_its_next_call(client, seeded):
    agent_id, token, job_id = await running_job(client, seeded)
    revoked = await client.post(f"/api/v1/agents/{agent_id}/revoke", headers=seeded.auth("admin"))
    assert (await revoked.json())["agent"]["status"] == "revoked"
    status, body = await beat(client, agent_id, token)
    assert status == 401 and body["error"]["code"] == "revoked"
    job = await (await client.get(f"/api/v1/jobs/{job_id}", headers=seeded.auth("viewer"))).json()
    assert job["job"]["state"] == "cancelled" and "revoked" in job["job"]["reason"]


async def test_a_rotated_token_arrives_in_a_heartbeat_and_a_lost_reply_costs_nothing(
        client, seeded):
    agent_id, old = await enroll(client, seeded)
    await client.post(f"/api/v1/agents/{agent_id}/rotate", headers=seeded.auth("admin"))
    _, reply = await beat(client, agent_id, old)
    lost_in_transit = reply["token"]
    assert lost_in_transit.startswith("kagt_") and lost_in_transit != old
    _, reply = await beat(client, agent_id, old)  # it never got it: a fresh one
    new = reply["token"]
    assert new not in (old, lost_in_transit)
    status, reply = await beat(client, agent_id, new)
    assert status == 200 and reply["token"] is None
    assert (await beat(client, agent_id, old))[0] == 401
    assert (await beat(client, agent_id, lost_in_transit))[0] == 401


async def test_settings_reach_the_agent_with_its_next_heartbeat(client, seeded):
    agent_id, token = await enroll(client, seeded)
    bad = await client.patch(f"/api/v1/agents/{agent_id}/settings",
                             json={"model_dir": "relative"}, headers=seeded.auth("admin"))
    assert bad.status == 400 and "absolute" in (await bad.json())["error"]["message"]
    ok = await client.patch(f"/api/v1/agents/{agent_id}/settings",
                            json={"model_dir": "/data/models", "heartbeat_s": 5},
                            headers=seeded.auth("admin"))
    assert ok.status == 200
    _, reply = await beat(client, agent_id, token)
    assert reply["settings"]["model_dir"] == "/data/models" and reply["heartbeat_s"] == 5
    for hostile in ("kitt; rm -rf /", "--privileged", "Kitt:UPPER/../x", 5):
        refused = await client.patch(f"/api/v1/agents/{agent_id}/settings",
                                     json={"kitt_image": hostile}, headers=seeded.auth("admin"))
        assert refused.status == 400, hostile
        assert "image reference" in (await refused.json())["error"]["message"]
    for image in ("registry.lab:5000/team/kitt:0.1.0", "", None):
        ok = await client.patch(f"/api/v1/agents/{agent_id}/settings",
                                json={"kitt_image": image}, headers=seeded.auth("admin"))
        assert ok.status == 200, image
        _, reply = await beat(client, agent_id, token)
        assert reply["settings"]["kitt_image"] == image


async def test_agents_are_not_public(seeded):
    async with web_client(seeded.url, public_read=True) as client:
        assert (await client.get("/api/v1/agents")).status == 401
        assert (await client.get("/api/v1/jobs")).status == 401


async def test_a_person_submits_a_run_once_with_its_checksum(client, seeded):
    document = kitt.to_json(make_run(88)).encode()
    headers = {"Content-Type": "application/json",
               "X-Content-SHA256": hashlib.sha256(document).hexdigest()}
    viewer = await client.post("/api/v1/runs", data=document,
                               headers={**headers, **seeded.auth("viewer")})
    assert viewer.status == 403
    first = await client.post("/api/v1/runs", data=document,
                              headers={**headers, **seeded.auth("operator")})
    assert first.status == 201 and (await first.json())["stored"] is True
    again = await client.post("/api/v1/runs", data=document,
                              headers={**headers, **seeded.auth("operator")})
    assert again.status == 200 and (await again.json())["stored"] is False
    damaged = await client.post("/api/v1/runs", data=document[:-1] + b" ",
                                headers={**headers, **seeded.auth("operator")})
    assert damaged.status == 400
