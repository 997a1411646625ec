"""Which container image an engine runs in, and getting it onto the machine.

Priority: the user's `image_overrides` in `$KITT_HOME/engines.yaml` (default
`~/.kitt/engines.yaml`) > the engine's hardware rules (`Engine.select_image(host)`, from
the host fingerprint) > the engine's default image. `kitt/*` images are never pulled:
they are built from the Dockerfiles under the repository's `docker/` folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from kitt._util.files import kitt_home
from kitt._util.yamlfile import load_yaml, plain
from kitt.engine import ImageChoice
from kitt.errors import BadInput, KittError
from kitt.plugins import engine_name
from kitt.records import Fingerprint

if TYPE_CHECKING:
    from docker import DockerClient

    from kitt.engine import Engine

LOCAL_PREFIX = "kitt/"
CONTENT_LABEL = "io.kitt.content"


# -- engines.yaml -------------------------------------------------------------------------

@attrs.frozen
class EnginesFile:
    """`$KITT_HOME/engines.yaml`: `image_overrides` (engine -> image) and
    `engine_options` (engine -> default options, e.g. `binary`, `threads`)."""

    path: Path | None = None
    image_overrides: dict[str, str] = attrs.field(factory=dict)
    engine_options: dict[str, dict[str, Any]] = attrs.field(factory=dict)


def engines_file_path() -> Path:
    return kitt_home() / "engines.yaml"


def load_engines_file(path: Path | None = None) -> EnginesFile:
    """The user's engines.yaml; absent means no overrides. Malformed -> BadInput with
    the file, line and problem."""
    path = path or engines_file_path()
    if not path.exists():
        return EnginesFile()
    doc = load_yaml(path, what="engines file")
    root = doc.mapping(doc.data, field="(top level)")
    doc.only_keys(root, ("image_overrides", "engine_options"))
    overrides: dict[str, str] = {}
    section = doc.mapping(root.get("image_overrides"), field="image_overrides",
                          parent=root, key="image_overrides")
    for engine, image in section.items():  # upstream's `llama_cpp:` keys name llamacpp
        overrides[engine_name(str(engine))] = doc.string(
            image, field=f"image_overrides.{engine}", parent=section, key=engine)
    options: dict[str, dict[str, Any]] = {}
    section = doc.mapping(root.get("engine_options"), field="engine_options",
                          parent=root, key="engine_options")
    for engine, values in section.items():
        values = doc.mapping(values, field=f"engine_options.{engine}", parent=section,
                             key=engine)
        options[engine_name(str(engine))] = plain(values)
    return EnginesFile(path, overrides, options)


# -- resolution ------------------------------------------------------------------

def resolve_image(engine: Engine, host: Fingerprint,
                  engines_file: EnginesFile | None = None) -> ImageChoice:
    engines_file = engines_file if engines_file is not None else load_engines_file()
    override = engines_file.image_overrides.get(engine.name)
    if override:
        return ImageChoice(override, f"image_overrides.{engine.name} in {engines_file.path}",
                           _local_context(engine, override))
    return engine.select_image(host)


def _local_context(engine: Engine, image: str) -> str | None:
    """An override naming a kitt/* image still builds from the engine's rule context."""
    if not image.startswith(LOCAL_PREFIX):
        return None
    return image[len(LOCAL_PREFIX):].replace(":", "-")


# -- getting images -----------------------------------------------------------------------

def docker_dir() -> Path:
    """Where `kitt/*` build contexts live: `KITT_DOCKER_DIR`, or the repository's docker/."""
    configured = os.environ.get("KITT_DOCKER_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[4] / "docker"


def image_present(client: DockerClient, image: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(image)
        return True
    except ImageNotFound:
        return False


def get_image(client: DockerClient, choice: ImageChoice, *, force_rebuild: bool = False,
              progress: Callable[[str], None] | None = None) -> str:
    """Build a `kitt/*` image or pull any other; returns what was done."""
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    if choice.image.startswith(LOCAL_PREFIX):
        build_local_image(client, choice, force=force_rebuild, progress=say)
        return "built"
    pull_image(client, choice.image, progress=say)
    return "pulled"


def build_local_image(client: DockerClient, choice: ImageChoice, *, force: bool,
                      progress: Callable[[str], None]) -> None:
    from docker.errors import APIError, BuildError

    if not choice.build_context:
        raise BadInput(f"image {choice.image} has no build context",
                       hint="name a build folder under docker/ in the engine's image rule")
    context = docker_dir() / choice.build_context
    if not (context / "Dockerfile").is_file():
        raise BadInput(f"no Dockerfile for {choice.image} at {context}",
                       hint="run from a KITT source checkout, or set KITT_DOCKER_DIR to its "
                            "docker/ folder")
    progress(f"building {choice.image} from {context}")
    try:
        for chunk in client.api.build(path=str(context), tag=choice.image, rm=True,
                                      forcerm=True, nocache=force, decode=True):
            if "stream" in chunk and chunk["stream"].strip():
                progress(chunk["stream"].rstrip())
            if "error" in chunk:
                raise KittError(f"building {choice.image} failed: {chunk['error'].strip()}",
                                hint=f"fix {context / 'Dockerfile'} or the build's network")
    except (APIError, BuildError) as exc:
        raise KittError(f"building {choice.image} failed: {exc}",
                        hint=f"check {context / 'Dockerfile'} and dockerd's log") from None


def pull_image(client: DockerClient, image: str, *, progress: Callable[[str], None]) -> None:
    from docker.errors import APIError

    repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (
        image, "", "latest")
    progress(f"pulling {image}")
    try:
        last = ""
        for chunk in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise KittError(f"pulling {image} failed: {chunk['error']}",
                                hint="check the registry is reachable, or set "
                                     "image_overrides in engines.yaml to a local image")
            line = " ".join(str(chunk.get(k, "")) for k in ("id", "status", "progress"))
            if line.strip() and line != last:
                progress(line.strip())
                last = line
    except APIError as exc:
        raise KittError(f"pulling {image} failed: {exc.explanation or exc}",
                        hint="check the registry is reachable, or set image_overrides in "
                             "engines.yaml to a local image") from None
