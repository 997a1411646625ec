"""KITT inside a container (the KITT image) launching engines as sibling containers
through the mounted Docker socket.

Two things differ from a host: the daemon resolves bind-mount sources on the *host*, so a
model path inside KITT's container must be translated through KITT's own mounts; and the
engine must be reachable from KITT's network namespace, so it joins that namespace
(`network_mode: container:<KITT>`, or `host` when KITT itself runs with `--network host`).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import attrs

from kitt.errors import BadInput

if TYPE_CHECKING:
    from docker import DockerClient

# Docker bind-mounts these three files from the container's own folder on the host.
_OWN_FILES = re.compile(r"/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)\s")


@attrs.frozen
class Sibling:
    """The container this KITT runs in, as its daemon sees it."""

    id: str
    network_mode: str
    """What an engine container joins: `host`, or `container:<id>` (KITT's namespace)."""
    mounts: tuple[tuple[str, str], ...]
    """(destination inside KITT's container, source on the host), longest first."""

    def host_path(self, path: Path) -> Path:
        """Where the daemon finds `path` (a path inside KITT's container)."""
        inner = PurePosixPath(path)
        for destination, source in self.mounts:
            if inner == PurePosixPath(destination) or \
                    PurePosixPath(destination) in inner.parents:
                return Path(source) / inner.relative_to(destination)
        raise BadInput(
            f"{path} is inside KITT's container, where an engine's container cannot see it",
            hint="mount the model's folder into KITT's container (e.g. "
                 "-v /path/to/models:/models:ro) and pass -m /models/MODEL")


def container_id(mountinfo: str) -> str | None:
    """The id of the Docker container whose `/proc/self/mountinfo` this is, if any."""
    found = _OWN_FILES.search(mountinfo)
    return found.group(1) if found else None


def own_container(client: DockerClient, mountinfo_path: str = "/proc/self/mountinfo"
                  ) -> Sibling | None:
    """This process's container on `client`'s daemon; None on a host, or in a container
    of another daemon (then KITT behaves as on a host)."""
    from docker.errors import NotFound

    try:
        ident = container_id(Path(mountinfo_path).read_text())
    except OSError:
        return None
    if ident is None:
        return None
    try:
        info = client.containers.get(ident).attrs
    except NotFound:
        return None
    mode = info.get("HostConfig", {}).get("NetworkMode") or "default"
    mounts = sorted(((m["Destination"], m["Source"]) for m in info.get("Mounts", [])
                     if m.get("Source")), key=lambda pair: -len(pair[0]))
    return Sibling(ident, "host" if mode == "host" else f"container:{ident}", tuple(mounts))
