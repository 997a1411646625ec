"""The KITT image (root Dockerfile) on a real dockerd: built from this tree on a local
Debian base (no registry here), then `docker run ... kitt run` measuring llama-server in a
sibling container, results and store landing in the mounted folder, owned by the folder's
owner. `nox -s images` runs these (it makes the wheelhouse the offline build needs)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support import free_port
from support.engines import TEST_IMAGE, docker_client_or_skip, kitt_containers, need_llama_server
from support.images import ROOT, build_kitt_image

from kitt._engines.rootfs import import_binary_image

pytestmark = [pytest.mark.image, pytest.mark.docker, pytest.mark.engine, pytest.mark.slow]
USER = 4321  # the "invoking user": owns the results folder, is not root
SOCKET = "/var/run/docker.sock"


@pytest.fixture(scope="module")
def client():
    return docker_client_or_skip()


@pytest.fixture(scope="module")
def kitt_image(client) -> str:
    return build_kitt_image(client)


@pytest.fixture(scope="module")
def llama_image(client) -> str:
    import_binary_image(client, need_llama_server(), TEST_IMAGE)
    return TEST_IMAGE


@pytest.fixture
def folders(tmp_path, tiny_model, llama_image):
    """models/ (the tiny GGUF) and kitt-results/ (owned by USER, naming the local
    llama-server image in its engines.yaml, as a user's KITT_HOME would)."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "kitt-tiny.gguf").write_bytes(tiny_model.gguf_path.read_bytes())
    results = tmp_path / "kitt-results"
    results.mkdir()
    (results / "engines.yaml").write_text(f"image_overrides:\n  llamacpp: {llama_image}\n")
    for path in (results, results / "engines.yaml"):
        os.chown(path, USER, USER)
    return models, results


def docker_run(image: str, *args: str, mounts: dict[str, str], network: str | None = None,
               entrypoint: str | None = None, timeout: float = 600
               ) -> subprocess.CompletedProcess:
    socket_path = os.environ.get("DOCKER_HOST", f"unix://{SOCKET}").removeprefix("unix://")
    command = ["docker", "run", "--rm", "-v", f"{socket_path}:{SOCKET}"]
    for source, target in mounts.items():
        command += ["-v", f"{source}:{target}"]
    if network:
        command += ["--network", network]
    if entrypoint:
        command += ["--entrypoint", entrypoint]
    return subprocess.run([*command, image, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _owners(folder: Path) -> set[int]:
    return {path.stat().st_uid for path in [folder, *folder.rglob("*")]}


@pytest.mark.parametrize("network", ["host", None], ids=["host-network", "bridge"])
def test_kitt_run_in_the_image_measures_llama_server_beside_it(client, kitt_image, folders,
                                                               network):
    models, results = folders
    done = docker_run(kitt_image, "run", "-m", "/models/kitt-tiny.gguf", "-e", "llama_cpp",
                      "--port", str(free_port()), "--json", network=network,
                      mounts={str(models): "/models:ro", str(results): "/app/kitt-results"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    run = outcome["run"]
    assert run["status"] == "passed" and run["engine"]["mode"] == "docker"
    assert run["engine"]["image"] == TEST_IMAGE
    throughput = next(r for r in run["results"] if r["name"] == "throughput")
    assert any(m["value"] > 0 for m in throughput["metrics"])
    # Results and the store are in the mounted folder, and belong to its owner.
    output = results / Path(outcome["output_dir"]).relative_to("/app/kitt-results")
    assert (output / "metrics.json").is_file() and (output / "report.html").is_file()
    assert _owners(results) == {USER}
    import kitt

    with kitt.open_store(f"sqlite:///{results / 'kitt.db'}") as store:
        assert store.get_run(run["id"]).engine.engine == "llamacpp"
    assert kitt_containers(client, run_id=run["id"]) == []


def test_a_model_outside_every_mount_is_refused_naming_the_fix(client, kitt_image, folders):
    _, results = folders
    done = docker_run(kitt_image, "-c", "kitt models tiny /tmp/m >/dev/null && "
                      "kitt-entrypoint run -m /tmp/m/kitt-tiny.gguf -e llamacpp",
                      entrypoint="sh", mounts={str(results): "/app/kitt-results"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "inside KITT's container" in done.stderr and "-v /path/to/models" in done.stderr
    assert kitt_containers(client, model="/tmp/m/kitt-tiny.gguf") == []


def test_compose_file_runs_kitt_from_the_image(client, kitt_image, folders, tmp_path):
    """The README's `MODEL_PATH=... docker compose run kitt ...` with the repository's
    docker-compose.yaml (Debian's docker-compose here; `docker compose` v2 reads the same
    file)."""
    compose = subprocess.run(["docker-compose", "version"], capture_output=True, check=False)
    if compose.returncode != 0:
        pytest.skip("docker-compose is not installed")
    models, results = folders
    socket_path = os.environ.get("DOCKER_HOST", f"unix://{SOCKET}").removeprefix("unix://")
    (tmp_path / "docker-compose.yaml").write_text(
        (ROOT / "docker-compose.yaml").read_text()
        .replace("image: kitt\n", f"image: {kitt_image}\n")
        .replace(f"{SOCKET}:{SOCKET}", f"{socket_path}:{SOCKET}"))
    env = {**os.environ, "MODEL_PATH": str(models)}
    config = subprocess.run(["docker-compose", "config"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=False)
    assert config.returncode == 0, config.stderr
    assert f"{models}:/models:ro" in config.stdout
    try:
        done = subprocess.run(["docker-compose", "run", "--rm", "kitt", "run", "-m",
                               "/models/kitt-tiny.gguf", "-e", "llamacpp", "-s", "quick",
                               "--port", str(free_port())], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
    finally:  # the project's network
        subprocess.run(["docker-compose", "down"], cwd=tmp_path, env=env,
                       capture_output=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "passed" in done.stdout and "report:" in done.stdout
    assert list(results.glob("results/*/llamacpp/*/metrics.json"))
    assert _owners(results) == {USER}


@pytest.mark.parametrize(("signal_name", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_docker_stop_interrupts_the_run_and_removes_the_engine(client, kitt_image, folders,
                                                               signal_name, code):
    """`docker stop` sends SIGTERM to KITT (PID 1 of its container; `docker kill -s INT`
    SIGINT): the benchmark under way stops, what was measured is stored as interrupted,
    the engine's sibling container is removed, and the container exits 143 (130)."""
    models, results = folders
    suite = results / "long.yaml"
    suite.write_text("name: long\nwarmup: {requests: 1, max_tokens: 4}\nbenchmarks:\n"
                     "  - name: throughput\n    params: {requests: 100000, concurrency: 2, "
                     "max_tokens: 32}\n")
    os.chown(suite, USER, USER)
    socket_path = os.environ.get("DOCKER_HOST", f"unix://{SOCKET}").removeprefix("unix://")
    container = client.containers.run(
        kitt_image, ["run", "-m", "/models/kitt-tiny.gguf", "-e", "llamacpp", "-s",
                     "/app/kitt-results/long.yaml"], detach=True,
        volumes={socket_path: {"bind": SOCKET, "mode": "rw"},
                 str(models): {"bind": "/models", "mode": "ro"},
                 str(results): {"bind": "/app/kitt-results", "mode": "rw"}})
    try:
        for line in container.logs(stream=True, follow=True):  # the phase, not a sleep
            if b"running throughput" in line:
                break
        engines = kitt_containers(client, engine="llamacpp")
        assert len(engines) == 1
        if signal_name == "SIGTERM":
            container.stop(timeout=120)
        else:
            container.kill(signal=signal_name)
        assert container.wait(timeout=120)["StatusCode"] == code
        logs = container.logs().decode()
    finally:
        container.remove(force=True)
    assert kitt_containers(client, engine="llamacpp") == []
    import kitt

    with kitt.open_store(f"sqlite:///{results / 'kitt.db'}") as store:
        (summary,) = store.list_runs()
        assert summary.status == "interrupted", logs[-2000:]
        run = store.get_run(summary.id)
    assert signal_name in (run.error or ""), run.error
    assert _owners(results) == {USER}
