"""`kitt-agent build`: the KITT image on this GPU host, built from the build context the
server serves (`GET /api/v1/agent/image`), fetched over the pinned connection and checked
against its SHA-256 before anything is built. The image carries the context's digest as
a label, so building the same context again is skipped."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from collections.abc import Callable

import kitt
from kitt_agent.config import AgentConfig

CONTEXT_LABEL = "io.kitt.image-context"
_NAME = re.compile(r"kitt-image-[A-Za-z0-9.+_-]+\.tar\.gz")


async def fetch_context(config: AgentConfig) -> tuple[dict, bytes]:
    """The server's context entry and its bytes; BadInput when they do not match."""
    from kitt_agent.client import ServerClient

    async with ServerClient(config.server, pin=config.pin, ca_file=config.ca_file) as client:
        status, entry = await client.call("GET", "/api/v1/agent/image", authorized=False)
        if status != 200 or not isinstance(entry, dict):
            raise kitt.BadInput("the server offers no KITT image build context",
                                hint="on the server: kitt web dist build")
        name = entry.get("name", "")
        if not _NAME.fullmatch(name):
            raise kitt.BadInput(f"the server offers a bad build context name {name!r}")
        data = await client.raw("GET", f"/api/v1/agent/image/{name}")
    return entry, data


def verified(entry: dict, data: bytes) -> str:
    """The context's SHA-256, when `data` has the one the server announced."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256"):
        raise kitt.BadInput(f"{entry.get('name')} does not match its SHA-256: nothing built",
                            hint="the download was damaged or altered; try again")
    return digest


def build(config: AgentConfig, *, tag: str | None, base_image: str | None, force: bool,
          say: Callable[[str], None]) -> tuple[str, bool]:
    """(the image's tag, whether it was built now)."""
    entry, data = asyncio.run(fetch_context(config))
    digest = verified(entry, data)
    tag = tag or f"kitt:{entry['kitt_version']}"
    client = kitt.docker_client()
    from docker.errors import APIError, BuildError, ImageNotFound

    if not force:
        try:
            if client.images.get(tag).labels.get(CONTEXT_LABEL) == digest:
                return tag, False
        except ImageNotFound:
            pass
    say(f"building {tag} from {entry['name']} (sha256 {digest[:12]}...)")
    try:
        for chunk in client.api.build(
                fileobj=io.BytesIO(data), custom_context=True, encoding="gzip", tag=tag,
                rm=True, forcerm=True, decode=True, labels={CONTEXT_LABEL: digest},
                buildargs={"BASE_IMAGE": base_image} if base_image else None):
            if "error" in chunk:
                raise BuildError(chunk["error"], [])
            line = chunk.get("stream", "").rstrip()
            if line:
                say(line)
    except (BuildError, APIError) as exc:
        raise kitt.KittError(f"building {tag} failed: {str(exc)[:1500]}",
                             hint="see the build's output above; a base image the host "
                                  "cannot pull takes --base-image") from None
    return tag, True
