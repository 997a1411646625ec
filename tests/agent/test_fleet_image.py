"""Docker-mode jobs inside the KITT image: an agent whose setting names the image runs
the job's `kitt run` in it (`docker run`), the engine as a sibling container, and the run
lands on the server; a cancel stops the container and the engine; an agent that starts
removes its own leftover job containers and no one else's. Real server, agent and dockerd
(`nox -s images`)."""

from __future__ import annotations

import subprocess

import pytest
from support import wait_until
from support.agents import LONG, SHORT
from support.engines import TEST_IMAGE, docker_client_or_skip, kitt_containers, need_llama_server
from support.images import build_kitt_image

from kitt._engines.rootfs import import_binary_image
from kitt_agent.container import LABEL_AGENT, LABEL_JOB

pytestmark = [pytest.mark.image, pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def images():
    client = docker_client_or_skip()
    import_binary_image(client, need_llama_server(), TEST_IMAGE)
    return client, build_kitt_image(client)


def _agent_in_image(fleet, image: str, name: str = "gpu-img"):
    agent = fleet.enroll(name)
    (agent.home / "engines.yaml").write_text(f"image_overrides:\n  llamacpp: {TEST_IMAGE}\n")
    status, body = fleet.api("PATCH", f"/api/v1/agents/{fleet.agent_id(agent)}/settings",
                             {"kitt_image": image})
    assert status == 200, body
    return agent.start()


def _job_containers(client, job_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{LABEL_JOB}={job_id}"})


def test_a_docker_mode_job_runs_in_the_kitt_image(fleet, images):
    client, image = images
    agent = _agent_in_image(fleet, image)
    # The agent reports where docker-mode jobs will run once its settings reached it.
    wait_until(lambda: (fleet.api("GET", f"/api/v1/agents/{fleet.agent_id(agent)}")[1]
                        ["agent"]["inventory"] or {}).get("kitt_image") == image, 60,
               "the agent to report its KITT image")
    job_id = fleet.submit(agent, {**SHORT, "mode": "docker"})
    fleet.wait_log(job_id, f"running in {image}:")
    wait_until(lambda: _job_containers(client, job_id), 120, "the job's container")
    job = fleet.wait_job(job_id, ("succeeded", "failed"), timeout=300)
    assert job["state"] == "succeeded", (job, fleet.server_log(job_id)[-3000:])
    status, run = fleet.api("GET", f"/api/v1/runs/{job['run_id']}")
    assert status == 200 and run["engine"]["mode"] == "docker"
    assert run["engine"]["image"] == TEST_IMAGE
    assert _job_containers(client, job_id) == []
    assert kitt_containers(client, engine="llamacpp") == []
    assert agent.stop() == 0


def test_cancelling_a_job_in_the_image_stops_it_and_its_engine(fleet, images):
    client, image = images
    agent = _agent_in_image(fleet, image)
    job_id = fleet.submit(agent, {**LONG, "mode": "docker"})
    fleet.wait_log(job_id, "running throughput")
    status, body = fleet.api("POST", f"/api/v1/jobs/{job_id}/cancel")
    assert status == 200, body
    job = fleet.wait_job(job_id, ("cancelled", "failed", "succeeded"), timeout=120)
    assert job["state"] == "cancelled", job
    status, run = fleet.api("GET", f"/api/v1/runs/{job['run_id']}")
    assert status == 200 and run["status"] == "interrupted"
    assert _job_containers(client, job_id) == []
    assert kitt_containers(client, engine="llamacpp") == []
    assert agent.stop() == 0


def test_a_starting_agent_removes_its_own_leftover_containers_only(fleet, images):
    client, image = images
    agent = fleet.enroll("gpu-left")
    mine, theirs = "job_leftover_mine", "job_leftover_theirs"
    for job_id, owner in ((mine, fleet.agent_id(agent)), (theirs, "kagt_someone_else")):
        subprocess.run(["docker", "run", "-d", "--name", f"kitt-job-{job_id}", "--label",
                        f"{LABEL_JOB}={job_id}", "--label", f"{LABEL_AGENT}={owner}",
                        "--entrypoint", "sleep", image, "600"], check=True,
                       capture_output=True)
    try:
        agent.start()
        agent.wait_for(f"removed kitt-job-{mine}")
        assert _job_containers(client, mine) == []
        assert len(_job_containers(client, theirs)) == 1
        assert agent.stop() == 0
    finally:
        for found in _job_containers(client, mine) + _job_containers(client, theirs):
            found.remove(force=True)
