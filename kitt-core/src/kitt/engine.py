"""The engine contract: what an engine plugin describes. KITT's runtimes do the launching."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import attrs

from kitt.model import JSON, Fingerprint


@attrs.frozen
class ImageChoice:
    """A container image and the reason it was chosen (shown by `kitt engines check`)."""

    image: str
    reason: str
    build_context: str | None = None
    """For `kitt/*` images: the folder under docker/ to build it from."""


@attrs.frozen
class Launch:
    """What to launch: the model, where to listen, and the user's engine options."""

    model: str
    """A local path (file or folder) or an engine-specific model reference (Ollama tag)."""
    port: int
    host: str = "127.0.0.1"
    served_name: str = "model"
    options: dict[str, JSON] = attrs.field(factory=dict)
    extra_args: tuple[str, ...] = ()


@attrs.frozen
class ContainerSpec:
    """How to run the engine in a container. `model_mount` is where the model's folder
    (or file) is mounted read-only inside the container."""

    image: str
    command: tuple[str, ...]
    container_port: int
    model_mount: str = "/models"
    environment: dict[str, str] = attrs.field(factory=dict)
    shm_size: str | None = None
    volumes: dict[str, str] = attrs.field(factory=dict)
    """Extra named volumes: volume name -> container path (e.g. Ollama's model store)."""


class Engine:
    """Base class for engine plugins. Override the class attributes and the methods that
    your engine needs; the defaults suit an OpenAI-compatible server with `/health`."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]
    modes: ClassVar[tuple[str, ...]] = ("native", "docker")
    api: ClassVar[str] = "openai"
    default_port: ClassVar[int] = 8000
    health_path: ClassVar[str] = "/health"
    metrics_path: ClassVar[str | None] = "/metrics"
    default_image: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    Options: ClassVar[type | None] = None
    """An attrs class of the engine's options (`-o key=value`, engines.yaml, suites).
    Unknown keys and values its validators reject stop the launch (exit 2); engines
    receive `Launch.options` as the full dict, defaults filled in."""
    install_hint: ClassVar[str] = ""
    """How to install the native server, shown when it is not found."""
    features: ClassVar[tuple[str, ...]] = ()
    """Optional API abilities, e.g. `prompt_logprobs` (completions with echo + logprobs)."""
    stop_grace_s: ClassVar[float] = 10.0
    """How long a graceful stop may take before the server is killed."""

    def select_image(self, host: Fingerprint) -> ImageChoice:
        """The image for `host`. Override to add hardware rules (GPU architecture...)."""
        if not self.default_image:
            raise NotImplementedError(f"engine {self.name} has no container image")
        return ImageChoice(self.default_image, "engine default")

    def find_native_binary(self, options: dict[str, JSON]) -> Path | None:
        """The server executable for native mode, or None when it is not installed."""
        return None

    def native_command(self, launch: Launch) -> list[str]:
        """The command line that starts the server natively."""
        raise NotImplementedError(f"engine {self.name} has no native mode")

    def container_spec(self, launch: Launch, image: str) -> ContainerSpec:
        """How to run the server in `image`. `launch.model` is already the in-container
        path of the model."""
        raise NotImplementedError(f"engine {self.name} has no docker mode")

    def is_healthy(self, status: int, body: bytes) -> bool:
        """Whether a response from `health_path` means ready to serve."""
        return status == 200

    def version(self, base_url: str) -> str | None:
        """The running server's version, when its API says (recorded with results)."""
        return None

    # -- hooks for engines that manage models or share a running service (Ollama) ---------

    def attach(self, base_url: str, options: dict[str, JSON]) -> bool:
        """Native mode: whether a server of this engine already answers at `base_url` and
        should be used as it is. KITT then starts nothing and stops nothing (a system
        service such as Ollama's). Default: never; the port must be free."""
        return False

    def prepare(self, base_url: str, launch: Launch) -> str | None:
        """Called once the server is healthy, before anything uses it, e.g. to import
        the model into the engine's store. `launch.model` is the host path (or tag).
        Returns the model name requests must use when it is not `launch.served_name`."""
        return None

    def __repr__(self) -> str:
        return f"<Engine {self.name}>"
