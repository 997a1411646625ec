"""`kitt monitoring deploy --host`: a monitoring deployment copied over SSH to a "remote"
host (a real OpenSSH server on loopback, whose sessions reach this machine's dockerd),
started there until healthy, inspected, and removed; a hostile folder name travels as one
quoted argument. SSH's refusals (unknown host key, refused login, nothing listening) are
tested without Docker."""

from __future__ import annotations

import json
import os
import stat
import urllib.request

import pytest
from support import free_port, run_kitt
from support.engines import docker_client_or_skip
from support.images import service_image
from support.sshd import sshd

pytestmark = pytest.mark.slow


def _generate(kitt_env, *images: str, prometheus: int | None = None) -> None:
    done = run_kitt("monitoring", "generate", "far", "--no-grafana", "-t", "127.0.0.1:9",
                    "--port", f"prometheus={prometheus or free_port()}", "--port",
                    f"influxdb={free_port()}", *images, env=kitt_env)
    assert done.returncode == 0, done.stderr


@pytest.mark.image
@pytest.mark.docker
def test_deploy_copies_and_starts_it_on_the_host_then_removes_it(kitt_env, tmp_path):
    client = docker_client_or_skip()
    images = ("--image", f"prometheus={service_image(client, 'prometheus')}",
              "--image", f"influxdb={service_image(client, 'influxdb')}")
    prometheus = free_port()
    _generate(kitt_env, *images, prometheus=prometheus)
    remote_dir = tmp_path / "remote home" / "it's $(here); far"
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    with sshd(tmp_path / "sshd", {"DOCKER_HOST": docker_host}) as server:
        login = ("--host", server.host, "--identity", str(server.identity),
                 "--known-hosts", str(server.known_hosts), "--remote-dir", str(remote_dir))
        try:
            done = run_kitt("monitoring", "deploy", "far", *login, env=kitt_env, timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"running on {server.host}" in done.stdout
            assert stat.S_IMODE((remote_dir / ".env").stat().st_mode) == 0o600
            assert (remote_dir / "prometheus" / "prometheus.yml").is_file()
            with urllib.request.urlopen(f"http://127.0.0.1:{prometheus}/-/ready") as ready:
                assert ready.status == 200
            status = run_kitt("monitoring", "status", "far", *login[:6], "--json",
                              env=kitt_env)
            assert status.returncode == 0, status.stderr
            rows = {r["service"]: r for r in json.loads(status.stdout)["services"]}
            assert rows["prometheus"]["state"] == "running"
            assert rows["influxdb"]["health"] == "healthy"
        finally:
            removed = run_kitt("monitoring", "remove", "far", *login, "--delete-files",
                               env=kitt_env, timeout=300)
    assert removed.returncode == 0, removed.stderr
    assert not remote_dir.exists()
    label = {"label": "com.docker.compose.project=kitt-monitoring-far"}
    assert client.containers.list(all=True, filters=label) == []
    assert client.volumes.list(filters=label) == []


def test_ssh_refusals_name_the_fix(kitt_env, tmp_path):
    _generate(kitt_env)
    with sshd(tmp_path / "sshd") as server:
        empty = tmp_path / "empty_known_hosts"
        empty.write_text("")
        stranger = tmp_path / "stranger"
        os.system(f"ssh-keygen -q -t ed25519 -N '' -f {stranger}")
        cases = [
            (("--host", server.host, "--identity", str(server.identity), "--known-hosts",
              str(empty)), "host key of", "ssh-keyscan"),
            (("--host", server.host, "--identity", str(stranger), "--known-hosts",
              str(server.known_hosts)), "refused the login", "--identity"),
            (("--host", f"{server.user}@127.0.0.1:{free_port()}", "--identity",
              str(server.identity), "--known-hosts", str(server.known_hosts)),
             "cannot reach", "sshd runs"),
            (("--host", "root@bad host;rm -rf /"), "is not [USER@]HOST[:PORT]", "--host"),
        ]
        for args, message, fix in cases:
            done = run_kitt("monitoring", "deploy", "far", *args, env=kitt_env, timeout=120)
            assert done.returncode == 2, (args, done.stderr)
            assert message in done.stderr and fix in done.stderr, done.stderr
