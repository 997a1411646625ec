"""Which container image an engine runs in, and getting it onto the machine.

Priority: the user's `image_overrides` in `$KITT_HOME/engines.yaml` (default
`~/.kitt/engines.yaml`) > the engine's hardware rules (`Engine.select_image(host)`, from
the host fingerprint) > the engine's default image. `kitt/*` images are never pulled:
they are built from the Dockerfiles under the repository's `docker/` folder.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from kitt.engine import ImageChoice
from kitt.errors import BadInput, KittError
from kitt.files import kitt_home
from kitt.model import CPUSection, Fingerprint
from kitt.yamlfile import load_yaml, plain

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
    for engine, image in section.items():
        overrides[str(engine)] = doc.string(image, field=f"image_overrides.{engine}",
                                            parent=section, key=engine)
    options: dict[str, dict[str, Any]] = {}
    section = doc.mapping(root.get("engine_options"), field="engine_options",
                          parent=root, key="engine_options")
    for engine, values in section.items():
        values = doc.mapping(values, field=f"engine_options.{engine}", parent=section,
                             key=engine)
        options[str(engine)] = plain(values)
    return EnginesFile(path, overrides, options)


# -- host and resolution ------------------------------------------------------------------

def host_fingerprint() -> Fingerprint:
    """This machine's fingerprint; a minimal one (architecture only) if probing fails."""
    try:
        from kitt.fingerprint import take_fingerprint  # type: ignore[import-not-found]

        return take_fingerprint()
    except Exception as exc:  # image choice must work even if probing cannot
        print(f"kitt: warning: hardware probe failed ({exc}); assuming no GPU",
              file=sys.stderr)
        return Fingerprint("unknown", cpu=CPUSection(architecture=platform.machine()))


def host_arch(host: Fingerprint) -> str:
    """`x86_64` or `arm64` (aarch64), whatever spelling the probe used."""
    arch = (host.cpu.architecture or platform.machine()).lower()
    return {"aarch64": "arm64", "arm64": "arm64", "amd64": "x86_64",
            "x86-64": "x86_64"}.get(arch, arch)


def max_compute_capability(host: Fingerprint) -> float | None:
    """The highest NVIDIA compute capability among the host's GPUs (e.g. 12.1), or None."""
    found = []
    for gpu in host.gpu.gpus:
        try:
            found.append(float(gpu.compute_capability or ""))
        except ValueError:
            continue
    return max(found, default=None)


def is_blackwell(host: Fingerprint) -> bool:
    cc = max_compute_capability(host)
    return cc is not None and cc >= 10.0


def resolve_image(engine: Engine, host: Fingerprint | None = None,
                  engines_file: EnginesFile | None = None) -> ImageChoice:
    engines_file = engines_file if engines_file is not None else load_engines_file()
    override = engines_file.image_overrides.get(engine.name)
    if override:
        return ImageChoice(override, f"image_overrides.{engine.name} in {engines_file.path}",
                           _local_context(engine, override))
    return engine.select_image(host if host is not None else host_fingerprint())


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
    return Path(__file__).resolve().parents[3] / "docker"


def image_present(client: DockerClient, image: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(image)
        return True
    except ImageNotFound:
        return False


def ensure_image(client: DockerClient, choice: ImageChoice, *, engine: str,
                 auto_pull: bool, progress: Callable[[str], None] | None = None) -> None:
    """The image is present afterwards, or BadInput says how to get it."""
    if image_present(client, choice.image):
        return
    if not auto_pull:
        verb = "build" if choice.image.startswith(LOCAL_PREFIX) else "pull"
        raise BadInput(f"image {choice.image} for engine {engine} is not present",
                       hint=f"run `kitt engines setup {engine}` to {verb} it, or pass "
                            "--auto-pull")
    get_image(client, choice, progress=progress)


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
