"""KITT in its own container: finding that container, translating model paths through its
mounts to the host paths the daemon needs, and refusing a model no mount covers. The real
thing (the KITT image launching llama-server beside itself) is tests/deploy/test_image.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitt._engines.sibling import Sibling, container_id, own_container
from kitt.errors import BadInput

ID = "4f" * 32
MOUNTINFO = (
    "27 1 0:52 / / rw,relatime shared:1 - overlay overlay rw\n"
    f"612 600 259:2 /srv/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 x rw\n"
    f"613 600 259:2 /srv/docker/containers/{ID}/hostname /etc/hostname rw - ext4 x rw\n"
    "614 600 259:2 /home/ana/models /models ro,relatime - ext4 /dev/nvme0n1p2 rw\n"
)


def test_container_id_is_read_from_the_files_docker_mounts():
    assert container_id(MOUNTINFO) == ID
    # A host's mountinfo, and one whose ids are not Docker's 64-hex form.
    assert container_id(MOUNTINFO.splitlines()[0]) is None
    assert container_id("1 1 0:1 /containers/abc/hostname /etc/hostname rw - ext4 x rw\n") \
        is None


def test_paths_translate_through_the_longest_covering_mount():
    sibling = Sibling(ID, f"container:{ID}", (
        ("/models/shared", "/nfs/models"), ("/models", "/home/ana/models"),
        ("/app/kitt-results", "/home/ana/kitt-results")))
    assert sibling.host_path(Path("/models/shared/q4.gguf")) == Path("/nfs/models/q4.gguf")
    assert sibling.host_path(Path("/models/tiny")) == Path("/home/ana/models/tiny")
    assert sibling.host_path(Path("/models")) == Path("/home/ana/models")
    # A prefix that is not a path component does not match.
    with pytest.raises(BadInput) as refused:
        sibling.host_path(Path("/models2/x.gguf"))
    assert "inside KITT's container" in str(refused.value)
    assert "-v /path/to/models:/models:ro" in refused.value.hint


class _Containers:
    def __init__(self, attrs):
        self.attrs = attrs

    def get(self, ident):
        from docker.errors import NotFound

        if self.attrs is None or ident != ID:
            raise NotFound("no such container")
        return type("C", (), {"attrs": self.attrs})()


def _client(attrs):
    return type("Client", (), {"containers": _Containers(attrs)})()


@pytest.mark.parametrize(("network", "joins"), [("host", "host"), ("bridge", f"container:{ID}"),
                                                ("kitt_default", f"container:{ID}")])
def test_own_container_joins_kitts_network_namespace(tmp_path, network, joins):
    pytest.importorskip("docker")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO)
    found = own_container(_client({
        "HostConfig": {"NetworkMode": network},
        "Mounts": [{"Type": "bind", "Source": "/home/ana/models", "Destination": "/models"},
                   {"Type": "volume", "Name": "results",
                    "Source": "/var/lib/docker/volumes/results/_data",
                    "Destination": "/app/kitt-results"}]}), str(mountinfo))
    assert found is not None and found.network_mode == joins
    assert found.host_path(Path("/app/kitt-results/x")) == \
        Path("/var/lib/docker/volumes/results/_data/x")


def test_a_host_or_another_daemons_container_is_not_a_sibling(tmp_path):
    pytest.importorskip("docker")
    host = tmp_path / "host"
    host.write_text(MOUNTINFO.splitlines()[0] + "\n")
    assert own_container(_client({}), str(host)) is None
    nested = tmp_path / "nested"
    nested.write_text(MOUNTINFO)
    assert own_container(_client(None), str(nested)) is None  # this daemon does not know it
    assert own_container(_client({}), str(tmp_path / "absent")) is None
