"""`kitt-agent build`: the KITT image built on an agent from the build context its server
serves, checked against the SHA-256 the server announces (real server, real agent, real
dockerd; the local Debian base stands in for python:3.12-slim)."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess

import pytest
from support import run_kitt
from support.engines import docker_client_or_skip
from support.images import debian_base, wheelhouse

from kitt.errors import BadInput
from kitt_agent.build import CONTEXT_LABEL, verified

TAG = "kitt-test/agent-built:latest"


def test_a_context_that_does_not_match_its_digest_is_refused():
    data = b"a build context"
    entry = {"name": "kitt-image-1.tar.gz", "sha256": hashlib.sha256(data).hexdigest()}
    assert verified(entry, data) == entry["sha256"]
    with pytest.raises(BadInput) as refused:
        verified(entry, data + b"!")
    assert "does not match its SHA-256: nothing built" in str(refused.value)


@pytest.mark.image
@pytest.mark.docker
@pytest.mark.slow
def test_agent_builds_the_kitt_image_from_the_servers_context(tmp_path, models, kitt_env):
    from support.agents import Fleet

    client = docker_client_or_skip()
    base = debian_base(client)
    _remove(client)  # an image an earlier session built from this context would be reused
    dist = tmp_path / "dist"
    packed = run_kitt("web", "dist", "build", "--out", str(dist), "--wheelhouse",
                      str(wheelhouse()), env=kitt_env, timeout=600)
    assert packed.returncode == 0, packed.stderr
    context = next(dist.glob("kitt-image-*.tar.gz"))
    # The same tree packs to the same bytes: agents and the server agree on one digest.
    again = run_kitt("web", "dist", "build", "--out", str(tmp_path / "again"), "--wheelhouse",
                     str(wheelhouse()), env=kitt_env, timeout=600)
    assert again.returncode == 0
    assert (tmp_path / "again" / context.name).read_bytes() == context.read_bytes()
    fleet = Fleet(tmp_path, models, "--agent-dist", str(dist))
    try:
        agent = fleet.enroll("builder")
        status, entry = fleet.api("GET", "/api/v1/agent/image")
        assert status == 200 and entry["sha256"] == hashlib.sha256(
            context.read_bytes()).hexdigest()
        done = agent.cli("build", "--base-image", base, "--tag", TAG, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"{TAG}: built" in done.stdout
        assert client.images.get(TAG).labels[CONTEXT_LABEL] == entry["sha256"]
        version = subprocess.run(["docker", "run", "--rm", TAG, "--version"],
                                 capture_output=True, text=True, check=True).stdout
        assert version.startswith("kitt, version ")
        twice = agent.cli("build", "--base-image", base, "--tag", TAG)
        assert twice.returncode == 0 and "already built from this context" in twice.stdout
    finally:
        fleet.close()
        _remove(client)


def _remove(client) -> None:
    from docker.errors import ImageNotFound

    with contextlib.suppress(ImageNotFound):
        client.images.remove(TAG, force=True)
