"""A real `kitt web` and real `kitt-agent` processes on loopback, running real jobs
(llama-server on KITT's tiny model), through the failures the protocol is built for. For
each: the job's final state, its run stored once, its log complete (the server's copy
equals the agent's spool, byte for byte), and nothing left running."""

from __future__ import annotations

import signal

import pytest
from support import wait_until
from support.agents import LONG, SHORT, AgentProcess, engine_processes, settle, wait_quiet

import kitt

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def assert_log_complete(fleet, agent: AgentProcess, job_id: str) -> None:
    spool = (agent.spool(job_id) / "log").read_bytes()
    assert fleet.server_log(job_id) == spool, "the server's log differs from the spool"


def stored_runs(fleet) -> list:
    with kitt.open_store(fleet.store) as store:
        return store.list_runs()


def test_a_job_runs_on_an_agent_and_its_run_lands_in_the_servers_store(fleet):
    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, SHORT)
    job = fleet.wait_job(job_id, ("succeeded", "failed"))
    assert job["state"] == "succeeded", (job, agent.text[-2000:])
    assert job["exit_code"] == 0 and job["attempt"] == 1
    [run] = stored_runs(fleet)
    assert job["run_id"] == run.id and run.status == "passed"
    assert_log_complete(fleet, agent, job_id)
    assert b"result uploaded: run " + run.id.encode() in fleet.server_log(job_id)
    status = agent.cli("status", "--json")
    assert '"reported": true' in status.stdout
    assert agent.stop() == 0
    wait_quiet(fleet.work)


def test_a_job_cancelled_while_running_stops_and_keeps_what_it_measured(fleet):
    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, LONG)
    fleet.wait_log(job_id, "running throughput")
    status, body = fleet.api("POST", f"/api/v1/jobs/{job_id}/cancel")
    assert status == 200, body
    job = fleet.wait_job(job_id, ("cancelled", "failed", "succeeded"), timeout=90)
    assert job["state"] == "cancelled", job
    assert "cancelled from the server" in job["reason"] and "143" in job["reason"]
    wait_quiet(fleet.work)  # the engine was torn down, nothing of the job is left
    [run] = stored_runs(fleet)  # kitt run stored the interrupted run; it was uploaded
    assert run.status == "interrupted" and job["run_id"] == run.id
    assert_log_complete(fleet, agent, job_id)
    late = fleet.api("POST", f"/api/v1/jobs/{job_id}/cancel")
    assert late[0] == 200 and late[1]["job"]["state"] == "cancelled"


def test_a_job_cancelled_while_starting_stops_cleanly(fleet):
    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, LONG)
    fleet.wait_log(job_id, "kitt-agent: running: ")  # kitt is starting: preflight, launch
    assert fleet.api("POST", f"/api/v1/jobs/{job_id}/cancel")[0] == 200
    job = fleet.wait_job(job_id, ("cancelled", "failed", "succeeded"), timeout=90)
    assert job["state"] == "cancelled", job
    wait_quiet(fleet.work)
    assert_log_complete(fleet, agent, job_id)
    runs = stored_runs(fleet)  # what kitt run measured before the signal, if anything
    assert len(runs) <= 1
    assert not runs or (runs[0].status == "interrupted" and job["run_id"] == runs[0].id)


def test_a_job_cancelled_before_it_starts_never_runs(fleet):
    agent = fleet.enroll("gpu-01")  # enrolled, not started: the job waits in the queue
    job_id = fleet.submit(agent, SHORT)
    assert fleet.api("POST", f"/api/v1/jobs/{job_id}/cancel")[1]["job"]["state"] == "cancelled"
    after = fleet.submit(agent, SHORT)
    agent.start()
    assert fleet.wait_job(after, ("succeeded", "failed"))["state"] == "succeeded"
    assert not agent.spool(job_id).exists()
    assert len(stored_runs(fleet)) == 1


def test_an_agent_killed_mid_job_reattaches_when_restarted(fleet):
    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, {**SHORT, "params": {**SHORT["params"], "requests": 400}})
    fleet.wait_log(job_id, "running throughput")
    agent.stop(signal.SIGKILL)
    assert engine_processes(fleet.work), "the job should outlive its agent"
    agent.start()
    agent.wait_for(f"re-attaching to job {job_id}")
    job = fleet.wait_job(job_id, ("succeeded", "failed", "lost"))
    assert job["state"] == "succeeded", (job, agent.text[-3000:])
    assert len(stored_runs(fleet)) == 1
    assert_log_complete(fleet, agent, job_id)


def test_the_server_killed_and_restarted_mid_job_loses_nothing(fleet):
    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, {**SHORT, "params": {**SHORT["params"], "requests": 200}})
    fleet.wait_log(job_id, "running throughput")
    fleet.web.stop(signal.SIGKILL)
    agent.wait_for("failed")  # it notices: heartbeats and uploads are retried
    fleet.start_server()
    job = fleet.wait_job(job_id, ("succeeded", "failed", "lost"))
    assert job["state"] == "succeeded", (job, agent.text[-3000:])
    assert len(stored_runs(fleet)) == 1
    assert_log_complete(fleet, agent, job_id)


def test_a_server_unreachable_past_the_retry_back_off_loses_no_line(fleet):
    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, SHORT)
    fleet.wait_log(job_id, "running throughput")
    fleet.web.stop()
    # The job ends during the outage; the agent's retries back off to 30 s apart.
    wait_until(lambda: (agent.spool(job_id) / "exit_code").exists(), 120, "the job to end")
    settle(8)
    fleet.start_server()
    job = fleet.wait_job(job_id, ("succeeded", "failed", "lost"), timeout=120)
    assert job["state"] == "succeeded", (job, agent.text[-3000:])
    assert len(stored_runs(fleet)) == 1
    assert_log_complete(fleet, agent, job_id)


def test_a_token_revoked_mid_job_stops_the_agent_and_its_job(fleet):
    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, LONG)
    fleet.wait_log(job_id, "running throughput")
    status, _ = fleet.api("POST", f"/api/v1/agents/{fleet.agent_id(agent)}/revoke")
    assert status == 200
    assert agent.exited(timeout=90) == 3
    assert "revoked" in agent.text and "kitt-agent init" in agent.text
    job = fleet.job(job_id)
    assert job["state"] == "cancelled" and "revoked" in job["reason"]
    wait_quiet(fleet.work)


def test_two_agents_racing_for_one_job_run_it_once(fleet):
    one = fleet.enroll("gpu-01").start()
    two = fleet.enroll("gpu-02").start()
    one.wait_for("serving")
    two.wait_for("serving")
    job_id = fleet.submit(None, SHORT)
    job = fleet.wait_job(job_id, ("succeeded", "failed"))
    assert job["state"] == "succeeded" and job["attempt"] == 1
    ran = [agent for agent in (one, two) if agent.spool(job_id).exists()]
    assert len(ran) == 1 and job["claimed_by"] == fleet.agent_id(ran[0])
    assert len(stored_runs(fleet)) == 1


def test_a_job_the_agent_cannot_run_fails_with_its_reason(fleet):
    fleet.enroll("gpu-01").start()
    # Queued for any agent (so only the server's checks apply), naming a model this
    # agent does not have: the agent refuses it, saying why.
    status, body = fleet.api("POST", "/api/v1/jobs", {"spec": {
        "model": "elsewhere.gguf", "engine": "llamacpp", **SHORT}})
    assert status == 201
    job = fleet.wait_job(body["job"]["id"], ("failed", "succeeded"))
    assert job["state"] == "failed"
    assert "refused by agent gpu-01" in job["reason"] and "not in this agent's model " \
        "storage" in job["reason"]
    assert stored_runs(fleet) == []


def test_after_a_database_reset_the_agent_enrolls_again_as_pending(fleet, tmp_path):
    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, SHORT)
    assert fleet.wait_job(job_id, ("succeeded", "failed"))["state"] == "succeeded"
    fleet.web.stop()
    (tmp_path / "karr.db").unlink()
    fleet.flags = ("--open-enrollment",)
    said = fleet.start_server()
    from support.web import TOKEN

    fleet.admin = TOKEN.search(said)[0]  # a fresh database: a new first admin
    agent.wait_for("enrolled again as")
    _, body = fleet.api("GET", "/api/v1/agents")
    [listed] = body["agents"]
    assert listed["name"] == "gpu-01" and listed["status"] == "pending"
    assert listed["id"] == fleet.agent_id(agent) and agent.spool(job_id).exists()
    fleet.api("POST", f"/api/v1/agents/{listed['id']}/approve")
    after = fleet.submit(agent, SHORT)
    assert fleet.wait_job(after, ("succeeded", "failed"))["state"] == "succeeded"


def test_a_campaign_runs_its_entries_and_survives_a_server_restart(fleet, tmp_path):
    import shutil

    agent = fleet.enroll("gpu-01")
    shutil.copy(agent.home / "models" / "kitt-tiny.gguf", agent.home / "models" / "b.gguf")
    agent.start()
    wait_until(lambda: fleet.reported(agent), 60, "the agent's first heartbeat")
    status, body = fleet.api("POST", "/api/v1/campaigns", {
        "name": "two", "agents": [fleet.agent_id(agent)], "engines": ["llamacpp"],
        "models": ["kitt-tiny.gguf", "b.gguf"], "suite": "quick"})
    assert status == 201, body
    campaign_id = body["campaign"]["id"]

    def entries():
        return fleet.api("GET", f"/api/v1/campaigns/{campaign_id}")[1]["campaign"]["entries"]

    # The first entry done, the second not yet dispatched or just queued: restart.
    wait_until(lambda: entries()[0]["state"] == "succeeded", 180, "the first entry")
    fleet.web.stop(signal.SIGKILL)
    fleet.start_server()
    wait_until(lambda: fleet.api("GET", f"/api/v1/campaigns/{campaign_id}")[1]["campaign"][
        "state"] == "finished", 240, "the campaign to finish")
    done = entries()
    assert [e["state"] for e in done] == ["succeeded", "succeeded"]
    runs = stored_runs(fleet)
    assert sorted(r.id for r in runs) == sorted(e["run_id"] for e in done)  # each once
    assert {r.model.rsplit("/", 1)[1] for r in runs} == {"kitt-tiny.gguf", "b.gguf"}


def test_a_job_stopped_on_the_host_is_reported_cancelled(fleet):
    import json

    agent = fleet.enroll("gpu-01").start()
    job_id = fleet.submit(agent, LONG)
    fleet.wait_log(job_id, "running throughput")
    listed = json.loads(agent.cli("test", "list", "--status", "running", "--json").stdout)
    assert [job["job"] for job in listed["jobs"]] == [job_id]
    stopped = agent.cli("test", "stop", job_id, "--timeout", "60")
    assert stopped.returncode == 0, stopped.stderr
    job = fleet.wait_job(job_id, ("cancelled", "failed", "succeeded"), timeout=90)
    assert job["state"] == "cancelled", job
    assert "stopped on the host (kitt-agent test stop)" in job["reason"]
    [run] = stored_runs(fleet)
    assert run.status == "interrupted" and job["run_id"] == run.id
    done = json.loads(agent.cli("test", "list", "--status", "cancelled", "--json").stdout)
    assert [job["job"] for job in done["jobs"]] == [job_id]
    # The agent marks it reported once the server's answer is in: after the state changed.
    wait_until(lambda: (agent.spool(job_id) / "reported").exists(), 60,
               "the agent to mark the job reported")
    again = agent.cli("test", "stop", job_id)
    assert again.returncode == 2 and "is not running" in again.stderr
    for bad in ("job_nothing", "../../etc"):
        unknown = agent.cli("test", "stop", bad)
        assert unknown.returncode == 2 and "no job" in unknown.stderr
    assert agent.stop() == 0
    wait_quiet(fleet.work)
