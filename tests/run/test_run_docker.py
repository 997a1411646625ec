"""`kitt run --mode docker`: a real suite through the Docker runtime, a real dockerd and a
locally built llama-server image; the container is gone afterwards."""

from __future__ import annotations

import time

import pytest
from support import free_port, run_kitt
from support.engines import LOCAL_IMAGE as IMAGE
from support.suites import reduced_standard

from kitt._util.converter import from_json
from kitt.records import Run

pytestmark = [pytest.mark.docker, pytest.mark.engine]


def test_docker_run_stores_results_and_removes_its_container(docker_image, tmp_path):
    """The reduced standard suite through the Docker runtime: quality, throughput, latency,
    container memory from the Docker API, warmup."""
    from kitt._testing.tinymodel import write_tiny_model

    model = write_tiny_model(tmp_path / "model").gguf_path
    config = tmp_path / "engine.yaml"
    config.write_text(f"engine: llamacpp\nmode: docker\nimage: {IMAGE}\n")
    out = tmp_path / "out"
    started = int(time.time()) - 1
    result = run_kitt("run", "-m", str(model), "-e", "llamacpp",
                      "-s", str(reduced_standard(tmp_path)), "--config", str(config),
                      "-o", str(out), "--port", str(free_port()),
                      env={"KITT_HOME": str(tmp_path / "home")}, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    run = from_json((out / "metrics.json").read_text(), Run)
    assert (run.status, run.engine.mode, run.engine.image) == ("passed", "docker", IMAGE)
    assert {r.name for r in run.results} == {"mmlu", "gsm8k", "truthfulqa", "hellaswag",
                                              "throughput", "latency", "memory_usage",
                                              "warmup_analysis"}
    memory = next(r for r in run.results if r.name == "memory_usage")
    assert memory.metric("container_memory_peak_mib").value > 0  # sampled via the Docker API
    assert "llama" in (out / "engine.log").read_text().lower()
    from kitt._engines.docker import LABEL_RUN

    label = {"label": f"{LABEL_RUN}={run.id}"}
    assert docker_image.containers.list(all=True, filters=label) == []
    # ...and the same filter does find the run's container in dockerd's event log.
    events = docker_image.events(since=started, until=int(time.time()) + 1, decode=True,
                                 filters={**label, "type": "container", "event": "create"})
    assert len(list(events)) == 1
