"""Campaigns from the web: planned onto the agents that can run each entry (the rest
skipped, saying why), dispatched one job per agent at a time in entry order, resumed by a
new scheduler (a server restart) with nothing run twice, cancelled, and served as the
file `kitt campaign run` reads. On SQLite and PostgreSQL, through HTTP."""

from __future__ import annotations

from test_api_agents import INVENTORY, bearer, beat, enroll

import kitt
from kitt_web.state import campaigns, jobs, open_state


async def two_agents(client, seeded):
    one, one_token = await enroll(client, seeded, "one")
    two, two_token = await enroll(client, seeded, "two")
    await beat(client, one, one_token)
    only_gguf = {**INVENTORY, "models": [m for m in INVENTORY["models"]
                                         if m["format"] == "gguf"]}
    await client.post(f"/api/v1/agents/{two}/heartbeat", json={"inventory": only_gguf},
                      headers=bearer(two_token))
    return (one, one_token), (two, two_token)


BODY = {"name": "nightly", "engines": ["llamacpp", "vllm"],
        "models": ["tiny.gguf", "tiny-hf"], "suite": "quick"}


async def test_a_campaign_is_planned_onto_agents_that_can_run_each_entry(client, seeded):
    (one, _), (two, _) = await two_agents(client, seeded)
    made = await client.post("/api/v1/campaigns", json={**BODY, "agents": [one, two]},
                             headers=seeded.auth("operator"))
    assert made.status == 201, await made.text()
    campaign = (await made.json())["campaign"]
    rows = {(e["model"], e["engine"]): e for e in campaign["entries"]}
    assert rows[("tiny.gguf", "llamacpp")]["agent_id"] in (one, two)
    assert "cannot run vllm" in rows[("tiny.gguf", "vllm")]["skip_reason"]
    assert "tiny-hf is safetensors; llamacpp serves gguf" in \
        rows[("tiny-hf", "llamacpp")]["skip_reason"]
    assert campaign["progress"] == {"queued": 1, "skipped": 3}
    file = await client.get(f"/api/v1/campaigns/{campaign['id']}/campaign.yaml",
                            headers=seeded.auth("viewer"))
    text = await file.text()
    assert "name: nightly" in text and "- llamacpp" in text and "suite: quick" in text


async def test_bad_campaigns_are_refused_naming_the_field(client, seeded):
    (one, _), _ = await two_agents(client, seeded)
    cases = [({**BODY, "agents": []}, "agents"), ({**BODY, "agents": ["agt_nope"]}, "agents"),
             ({**BODY, "agents": [one], "engines": ["nope"]}, "engines"),
             ({**BODY, "agents": [one], "suite": "nope"}, "suite"),
             ({**BODY, "agents": [one], "name": "a b"}, "name"),
             ({**BODY, "agents": [one], "models": ["missing.gguf"]}, "models"),
             ({**BODY, "agents": [one], "image": "x"}, "image")]
    for body, field in cases:
        refused = await client.post("/api/v1/campaigns", json=body,
                                    headers=seeded.auth("operator"))
        assert refused.status == 400, body
        assert (await refused.json())["error"]["message"].startswith(f"{field}:"), body
    viewer = await client.post("/api/v1/campaigns", json={**BODY, "agents": [one]},
                               headers=seeded.auth("viewer"))
    assert viewer.status == 403


def test_the_scheduler_runs_one_entry_per_agent_at_a_time_and_resumes(seeded):
    from test_queue import enroll as enroll_db

    with kitt.open_store(seeded.url) as store:
        db = open_state(store)
        agent, _ = enroll_db(db, "gpu")
        entries = [{"model": f"m{i}.gguf", "engine": "llamacpp", "agent_id": agent.id}
                   for i in range(3)]
        document = {"name": "c", "suite_document": {"name": "s", "benchmarks": []}}
        campaign = campaigns.create(db, "c", document, entries, "t")
        first = campaigns.dispatch(db)
        assert len(first) == 1 and campaigns.dispatch(db) == []  # one at a time
        job = jobs.claim(db, agent.id)
        assert job.id == first[0] and job.spec["model"] == "m0.gguf"
        jobs.report(db, agent.id, job.id, "succeeded")
    # A server restart: a new store, a new scheduler, the state from the database.
    with kitt.open_store(seeded.url) as store:
        db = open_state(store)
        second = campaigns.dispatch(db)
        assert len(second) == 1 and jobs.get(db, second[0]).spec["model"] == "m1.gguf"
        stopped = campaigns.cancel(db, campaign.id, "op")
        assert stopped == second and jobs.get(db, second[0]).state == "cancelled"
        assert campaigns.dispatch(db) == []
        states = [campaigns.entry_state(e, j, "cancelled")
                  for e, j in campaigns.entries(db, campaign.id)]
        assert states == ["succeeded", "cancelled", "not run"]
        job_ids = [e.job_id for e, _ in campaigns.entries(db, campaign.id) if e.job_id]
        assert len(job_ids) == len(set(job_ids)) == 2


def test_a_campaign_finishes_when_every_entry_has(seeded):
    from test_queue import enroll as enroll_db

    with kitt.open_store(seeded.url) as store:
        db = open_state(store)
        agent, _ = enroll_db(db, "gpu")
        campaign = campaigns.create(db, "c", {"name": "c", "suite_document": {}}, [
            {"model": "m.gguf", "engine": "llamacpp", "agent_id": agent.id},
            {"model": "m.gguf", "engine": "vllm", "skip_reason": "no agent"}], "t")
        [job_id] = campaigns.dispatch(db)
        jobs.claim(db, agent.id)
        jobs.report(db, agent.id, job_id, "failed", reason="x")
        campaigns.dispatch(db)
        finished = campaigns.get(db, campaign.id)
        assert finished.state == "finished" and finished.finished_at is not None
        assert campaigns.progress(db, finished) == {"failed": 1, "skipped": 1}
        try:
            campaigns.cancel(db, campaign.id, "op")
        except jobs.Conflict as conflict:
            assert "finished" in conflict.message
        else:
            raise AssertionError("cancelling a finished campaign must be refused")


async def test_cancel_through_the_api(client, seeded):
    (one, _), _ = await two_agents(client, seeded)
    made = await (await client.post("/api/v1/campaigns", json={**BODY, "agents": [one]},
                                    headers=seeded.auth("operator"))).json()
    campaign_id = made["campaign"]["id"]
    done = await client.post(f"/api/v1/campaigns/{campaign_id}/cancel",
                             headers=seeded.auth("operator"))
    assert (await done.json())["campaign"]["state"] == "cancelled"
    again = await client.post(f"/api/v1/campaigns/{campaign_id}/cancel",
                              headers=seeded.auth("operator"))
    assert again.status == 409
    listed = await (await client.get("/api/v1/campaigns", headers=seeded.auth("viewer"))).json()
    assert [c["state"] for c in listed["campaigns"]] == ["cancelled"]


async def test_the_wizard_launches_a_campaign_and_its_page_shows_progress(client, seeded):
    from support.web import csrf_of, login

    (one, _), _ = await two_agents(client, seeded)
    assert (await login(client, seeded.secrets["operator"])).status == 303
    wizard = await (await client.get("/campaigns/new")).text()
    assert 'value="tiny.gguf"' in wizard and f'value="{one}"' in wizard
    csrf = csrf_of(wizard)
    bad = await client.post("/campaigns/new", data={"csrf_token": csrf, "name": "x",
                                                    "engines": "llamacpp"})
    assert bad.status == 400 and "agents" in await bad.text()
    launched = await client.post("/campaigns/new", data=[
        ("csrf_token", csrf), ("name", "from-the-wizard"), ("agents", one),
        ("engines", "llamacpp"), ("models", "tiny.gguf"), ("models", "tiny-hf"),
        ("suite", "quick")], allow_redirects=False)
    assert launched.status == 303
    detail = await (await client.get(launched.headers["Location"])).text()
    assert "from-the-wizard" in detail and "1 queued" in detail and "1 skipped" in detail
    assert "Cancel campaign" in detail
    cancelled = await client.post(launched.headers["Location"] + "/cancel",
                                  data={"csrf_token": csrf}, allow_redirects=False)
    assert cancelled.status == 303
    assert 'id="campaign-state">cancelled' in await (await client.get(
        launched.headers["Location"])).text()
