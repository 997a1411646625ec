"""What an installed engine can do on this host: the one status `kitt engines list`,
`kitt engines check` and the web's catalogue show."""

from __future__ import annotations

from typing import Any

from kitt._engines.docker import docker_client
from kitt._engines.images import EnginesFile, image_present, load_engines_file, resolve_image
from kitt.errors import BadInput


def engine_status(engine: Any, *, client: Any, docker_error: str | None,
                  host: Any) -> dict[str, Any]:
    """What `kitt engines list` shows of one engine: formats, modes, the native binary
    found, the image chosen for `host` and whether Docker (`client`) has it."""
    try:
        engines_file = load_engines_file()
    except BadInput:
        engines_file = EnginesFile()  # `kitt engines check` reports the file's error
    options = dict(engines_file.engine_options.get(engine.name, {}))
    binary = None
    if "native" in engine.modes:
        try:
            binary = engine.find_native_binary(options)
        except Exception:  # status reporting must survive a broken engine plugin
            binary = None
    image = reason = None
    image_status = "n/a"
    if "docker" in engine.modes:
        try:
            choice = resolve_image(engine, host, engines_file)
            image, reason = choice.image, choice.reason
        except NotImplementedError:
            pass
        if image and client is not None:
            present = image_present(client, image)
            image_status = "present" if present else (
                "not built" if image.startswith("kitt/") else "not pulled")
        elif image:
            image_status = f"unknown (docker: {docker_error})"
    return {
        "name": engine.name, "aliases": list(engine.aliases),
        "description": engine.description,
        "formats": list(engine.formats), "modes": list(engine.modes), "api": engine.api,
        "default_port": engine.default_port, "features": list(engine.features),
        "native_binary": str(binary) if binary else None,
        "image": image, "image_reason": reason, "image_status": image_status,
    }


def docker_or_reason() -> tuple[Any, str | None]:
    """A Docker client, or None and why not."""
    try:
        return docker_client(), None
    except BadInput as exc:
        return None, exc.message
