"""Docker runtime against a real llama-server in a container. No registry is reachable,
so the tests make their image from the host's llama-server (`docker import` of a root
filesystem holding the binary and the libraries it links). After each test: no
container labelled by KITT for that run or model is left."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from support import free_port, interrupt, run_kitt, start_kitt, wait_for_line
from support.engines import (
    TEST_IMAGE,
    docker_client_or_skip,
    kitt_containers,
    launched,
    model_copy,
    need_llama_server,
)

from kitt._engines.rootfs import import_binary_image

pytestmark = [pytest.mark.docker, pytest.mark.engine]
READY = 180.0


@pytest.fixture(scope="module")
def client():
    return docker_client_or_skip()


@pytest.fixture(scope="module")
def llama_image(client) -> str:
    binary = need_llama_server()
    import_binary_image(client, binary, TEST_IMAGE)
    # Same binary, same libraries: a second build is skipped (content label matches).
    assert import_binary_image(client, binary, TEST_IMAGE) is False
    return TEST_IMAGE


def _complete(base_url: str) -> dict:
    request = urllib.request.Request(
        f"{base_url}/v1/completions", headers={"Content-Type": "application/json"},
        data=json.dumps({"prompt": "Hello", "max_tokens": 6, "temperature": 0}).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def test_llama_server_in_docker_completes_and_is_removed(client, llama_image, tiny_model,
                                                         tmp_path, kitt_env):
    model = model_copy(tiny_model, tmp_path)
    with launched("llamacpp", str(model), mode="docker", image=llama_image,
                       port=free_port(), options={"threads": 2},
                       ready_timeout_s=READY) as running:
        container = client.containers.get(running.container_id)
        assert container.labels["io.kitt.run-id"] == running.run_id
        assert container.labels["io.kitt.engine"] == "llamacpp"
        mount = container.attrs["Mounts"][0]
        assert mount["Destination"] == "/models" and mount["RW"] is False
        assert _complete(running.base_url)["usage"]["completion_tokens"] == 6
    assert kitt_containers(client, run_id=running.run_id) == []
    assert "llama" in running.log_path.read_text()  # logs were streamed to the file


def test_serve_docker_sigint_mid_serve_removes_container(client, llama_image, tiny_model,
                                                         tmp_path, kitt_env):
    model = model_copy(tiny_model, tmp_path)
    proc = start_kitt("engines", "serve", "-m", str(model), "-e", "llamacpp", "--mode",
                      "docker", "--image", llama_image, "--port", str(free_port()),
                      env=kitt_env)
    url = wait_for_line(proc, "http://")
    assert len(kitt_containers(client, model=str(model))) == 1
    assert _complete(url)["choices"][0]["text"]
    code, err = interrupt(proc)
    assert code == 130, err
    assert kitt_containers(client, model=str(model)) == []


def test_container_that_exits_at_once_reports_its_log(client, llama_image, tiny_model,
                                                      tmp_path, kitt_env):
    model = model_copy(tiny_model, tmp_path)
    result = run_kitt("engines", "serve", "-m", str(model), "-e", "llamacpp", "--mode",
                      "docker", "--image", llama_image, "--port", str(free_port()),
                      "--ready-timeout", "300", "--", "--no-such-flag", env=kitt_env)
    assert result.returncode == 3, result.stderr
    assert "exited (exit code 1) before becoming ready" in result.stderr
    assert "--no-such-flag" in result.stderr  # llama-server's complaint, from the log
    assert kitt_containers(client, model=str(model)) == []


def test_missing_image_without_auto_pull_is_bad_input(client, tiny_model, kitt_env):
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "--mode", "docker", "--image", "kitt-test/absent:none",
                      "--port", str(free_port()), env=kitt_env)
    assert result.returncode == 2, result.stderr
    assert "image kitt-test/absent:none for engine llamacpp is not present" in result.stderr
    assert "kitt engines setup llamacpp" in result.stderr


def test_cleanup_removes_what_a_crashed_run_left(client, llama_image, tmp_path, kitt_env):
    leftover = client.containers.create(
        llama_image, ["--version"], name=f"kitt-llamacpp-crashed-{tmp_path.name}",
        labels={"io.kitt.managed": "true", "io.kitt.run-id": tmp_path.name,
                "io.kitt.engine": "llamacpp"})
    result = run_kitt("engines", "cleanup", "--dry-run", env=kitt_env)
    assert f"would remove container: {leftover.name}" in result.stdout
    result = run_kitt("engines", "cleanup", env=kitt_env)
    assert result.returncode == 0, result.stderr
    assert f"removed container: {leftover.name}" in result.stdout
    assert kitt_containers(client, run_id=tmp_path.name) == []


def test_setup_builds_kitt_image_from_docker_dir(client, llama_image, tmp_path, kitt_env):
    """`kitt/*` images are built, never pulled; an override names one; check explains."""
    context = tmp_path / "docker" / "llama-cpp-testbuild"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(f"FROM {llama_image}\nLABEL io.kitt.test=built\n")
    home = Path(kitt_env["KITT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "engines.yaml").write_text("image_overrides:\n  llamacpp: kitt/llama-cpp:testbuild\n")
    env = {**kitt_env, "KITT_DOCKER_DIR": str(tmp_path / "docker")}
    try:
        dry = run_kitt("engines", "setup", "llamacpp", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert "would build kitt/llama-cpp:testbuild from" in dry.stdout
        done = run_kitt("engines", "setup", "llamacpp", env=env)
        assert done.returncode == 0, done.stderr
        assert "built kitt/llama-cpp:testbuild" in done.stdout
        assert "Step" in done.stderr or "LABEL" in done.stderr  # build progress shown
        assert client.images.get("kitt/llama-cpp:testbuild").labels["io.kitt.test"] == "built"
        again = run_kitt("engines", "setup", "llamacpp", env=env)
        assert "already present" in again.stdout
        check = run_kitt("engines", "check", "llamacpp", "--json", env=env)
        assert check.returncode == 0, check.stderr
        doc = json.loads(check.stdout)
        assert doc["image"] == "kitt/llama-cpp:testbuild"
        assert doc["image_reason"].startswith("image_overrides.llamacpp in ")
        assert doc["image_status"] == "present" and doc["docker_ready"]
    finally:
        client.images.remove("kitt/llama-cpp:testbuild", force=True)
