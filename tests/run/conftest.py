"""Fixtures of the `kitt run` tests."""

from __future__ import annotations

import pytest
from support import require
from support.engines import LOCAL_IMAGE


@pytest.fixture(scope="session")
def docker_image():
    """A Docker client, with LOCAL_IMAGE built from this machine's llama-server."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        require("docker", False, f"no Docker daemon: {exc}")
    from kitt._engines.rootfs import import_binary_image
    from kitt_engine_llamacpp import LlamaServer

    binary = LlamaServer().find_native_binary({})
    require("llama-server", binary is not None, "llama-server not found")
    import_binary_image(client, binary, LOCAL_IMAGE)  # skipped when already built from it
    return client
