"""A stop signal during a benchmark on a real engine: llama-server natively (the engine's
process group is gone afterwards) and in Docker (its container is gone), and the run is
stored as interrupted with what it measured. The phase-by-phase matrix is
test_run_signals.py, on the `stall` test engine."""

from __future__ import annotations

import signal

import pytest
from support import assert_no_processes, free_port, interrupt, start_kitt, wait_for_line
from support.engines import LOCAL_IMAGE, model_copy, need_llama_server
from support.stall import stored_runs

pytestmark = pytest.mark.engine

# Long enough that the signal lands while it runs: tens of thousands of requests.
SUITE = """\
name: long
warmup: {requests: 1, max_tokens: 4}
benchmarks:
  - name: latency
    params: {requests: 2, prompt_tokens: 16, max_tokens: 4}
  - name: throughput
    params: {concurrency: 4, requests: 50000, prompt_tokens: 16, max_tokens: 32}
"""


def start_long_run(tmp_path, kitt_env, model, *options):
    suite = tmp_path / "long.yaml"
    suite.write_text(SUITE)
    proc = start_kitt("run", "-m", str(model), "-e", "llamacpp", "-s", str(suite),
                      "-o", str(tmp_path / "out"), "--port", str(free_port()), *options,
                      env=kitt_env)
    wait_for_line(proc, "  throughput: ", stream="stderr")  # requests are in flight
    return proc


def assert_interrupted_run(db, code, err, sig):
    name = signal.Signals(sig).name
    assert code == 128 + sig, err
    assert f"kitt: interrupted by {name}; the engine was stopped" in err, err
    assert "1 of 2 benchmark runs finished" in err, err
    (run,) = stored_runs(db)
    assert run.status == "interrupted"
    assert run.error == f"interrupted by {name} during throughput (run 1)"
    latency, throughput = run.results
    assert latency.passed and latency.metrics  # what finished is kept whole
    assert throughput.details == {"interrupted_by": name}
    assert run.engine_version and run.engine_version_source
    return run


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM-pid", "SIGINT-group"])
def test_native_llama_server(tiny_model, tmp_path, kitt_env, sig, group):
    need_llama_server()
    model = model_copy(tiny_model, tmp_path)
    proc = start_long_run(tmp_path, kitt_env, model, "-O", "threads=2")
    code, err = interrupt(proc, sig, group=group)
    assert_interrupted_run(tmp_path / "kitt-home" / "kitt.db", code, err, sig)
    assert_no_processes(str(model))


@pytest.mark.docker
def test_docker_llama_server(docker_image, tiny_model, tmp_path, kitt_env):
    from kitt._engines.docker import LABEL_RUN

    model = model_copy(tiny_model, tmp_path)
    proc = start_long_run(tmp_path, kitt_env, model, "--mode", "docker", "--config",
                          str(_docker_config(tmp_path)))
    code, err = interrupt(proc, signal.SIGTERM)
    run = assert_interrupted_run(tmp_path / "kitt-home" / "kitt.db", code, err,
                                 signal.SIGTERM)
    assert run.engine.mode == "docker"
    label = {"label": f"{LABEL_RUN}={run.id}"}
    assert docker_image.containers.list(all=True, filters=label) == []


def _docker_config(tmp_path):
    config = tmp_path / "engine.yaml"
    config.write_text(f"engine: llamacpp\nmode: docker\nimage: {LOCAL_IMAGE}\n")
    return config
