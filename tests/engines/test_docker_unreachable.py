"""Docker mode without a reachable dockerd stops in preflight (no dockerd needed)."""

from __future__ import annotations

from support import free_port, run_kitt


def test_docker_unreachable_is_bad_input(tiny_model, tmp_path, kitt_env):
    env = {**kitt_env, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "--mode", "docker", "--port", str(free_port()), env=env)
    assert result.returncode == 2, result.stderr
    assert "Docker is not reachable" in result.stderr
    assert "fix: start dockerd, or set DOCKER_HOST" in result.stderr
