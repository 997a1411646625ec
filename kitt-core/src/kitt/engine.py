"""The engine contract: what an engine plugin describes. KITT's runtimes do the launching.

Besides the `Engine` base class, this module holds the helpers engines share for native
mode: finding the server executable (`find_executable`, `find_python`) and turning
options into command-line flags (`option_flags`).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

import attrs

from kitt.records import JSON, Fingerprint


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


@attrs.frozen
class EngineVersion:
    """Which build of an engine served a run, and where KITT read that (recorded with the
    run, so runs can be told apart by build): `GET /version`, `llama-server --version`,
    a package's version, or a hash of the binary when nothing else identifies it."""

    version: str
    source: str


@attrs.frozen
class TokenizeApi:
    """How an engine's server tokenizes text over HTTP (`Engine.tokenize_api`).

    `POST path` with `{text_field: text, **extra}` (plus `"model"` when `send_model`)
    answers `{"tokens": [...]}` or a list of `{"id": ...}` objects. `detokenize_path`, when
    the server has one, takes `{"tokens": [...]}` and answers the text under
    `detokenize_field`. `adds_bos`: the server always puts a BOS token first, which KITT
    strips (prompts are text the server tokenizes again).
    """

    path: str = "/tokenize"
    text_field: str = "prompt"
    extra: dict[str, JSON] = attrs.field(factory=dict)
    send_model: bool = False
    detokenize_path: str | None = None
    detokenize_field: str = "prompt"
    adds_bos: bool = False


class Engine:
    """Base class for engine plugins. Override the class attributes and the methods that
    your engine needs; the defaults suit an OpenAI-compatible server with `/health`."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    """Other names users may give the engine (upstream KITT's `llama_cpp` for
    `llamacpp`): accepted wherever an engine is named; `name` is what KITT stores."""
    formats: ClassVar[tuple[str, ...]]
    modes: ClassVar[tuple[str, ...]] = ("native", "docker")
    api: ClassVar[str] = "openai"
    default_port: ClassVar[int] = 8000
    health_path: ClassVar[str] = "/health"
    metrics_path: ClassVar[str | None] = "/metrics"
    default_image: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    Options: ClassVar[type | None] = None
    """An attrs class of the engine's options (`-O key=value`, engines.yaml, suites).
    Unknown keys and values its validators reject stop the launch (exit 2); engines
    receive `Launch.options` as the full dict, defaults filled in."""
    install_hint: ClassVar[str] = ""
    """How to install the native server, shown when it is not found."""
    features: ClassVar[tuple[str, ...]] = ()
    """Optional API abilities, e.g. `prompt_logprobs` (completions with echo + logprobs)."""
    stop_grace_s: ClassVar[float] = 10.0
    """How long a graceful stop may take before the server is killed."""
    shared_service: ClassVar[bool] = False
    """Native mode may reuse a server already running on `default_port` (`attach`), as
    a system service is (Ollama's): campaigns then keep that port rather than pick a free
    one for each run."""
    tokenize_api: ClassVar[TokenizeApi | None] = None
    """The server's tokenize endpoint, when it has one: perf benchmarks build exact
    prompt lengths with it, quality scoring counts tokens, conformance checks it."""

    def select_image(self, host: Fingerprint) -> ImageChoice:
        """The image for `host`. Override to add hardware rules (GPU architecture...)."""
        if not self.default_image:
            raise NotImplementedError(f"engine {self.name} has no container image")
        return ImageChoice(self.default_image, "engine default")

    def find_native_binary(self, options: dict[str, JSON]) -> Path | None:
        """The server executable for native mode, or None when it is not installed
        (`find_executable` and `find_python` do the usual lookups)."""
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

    def version(self, base_url: str, binary: Path | None) -> EngineVersion | None:
        """The build serving at `base_url`, recorded with every run, and where it was
        read. `binary` is the native server (or interpreter) that was started, None in
        Docker mode or when KITT attached to a running server. When the server reports no
        usable build, identify the binary (`kitt.binary_digest`)."""
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


# -- helpers for native mode -----------------------------------------------------------------

def find_executable(configured: JSON, *names: str,
                    fallback: Callable[[], str | Path | None] | None = None) -> Path | None:
    """The executable an engine runs natively: `configured` (the user's option, e.g. the
    `binary` option) when set, which must then exist; else the first of `names` on PATH;
    else what `fallback` finds (e.g. a binary a Python package ships). None: not found."""
    if configured:
        path = Path(str(configured)).expanduser()
        return path if path.is_file() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    if fallback is not None:
        try:
            found_path = fallback()
        except Exception:  # a broken package is "not found": the install hint says more
            return None
        if found_path and Path(found_path).is_file():
            return Path(found_path)
    return None


def find_python(configured: JSON, *modules: str) -> Path | None:
    """A Python interpreter that can import every one of `modules` (a server run as
    `python -m ...`): `configured` (e.g. the `python` option, another environment's
    interpreter) when set, else KITT's own. None when it lacks one of them."""
    if configured:
        path = Path(str(configured)).expanduser()
        return path if path.is_file() and _imports(str(path), modules) else None
    if all(find_spec(module) is not None for module in modules):
        return Path(sys.executable)
    return None


@functools.lru_cache(maxsize=16)
def _imports(python: str, modules: tuple[str, ...]) -> bool:
    """Whether `python` finds `modules`: a spec lookup, which imports nothing heavy."""
    code = ("import importlib.util, sys; "
            f"sys.exit(any(importlib.util.find_spec(m) is None for m in {list(modules)!r}))")
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def binary_digest(path: Path) -> str:
    """`sha256:` and the first 12 hex digits of a native build's hash: the binary and the
    shared libraries beside it (a local llama.cpp build keeps its code in `lib*.so` next to
    a small executable). Names a build when its version string does not ("unknown")."""
    import hashlib

    digest = hashlib.sha256()
    libraries = sorted(p for p in path.parent.glob("lib*.so*")
                       if p.is_file() and not p.is_symlink())
    for file in (path, *libraries):
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()[:12]}"


def option_flags(options: Mapping[str, Any], flags: Mapping[str, str],
                 switches: Mapping[str, str] | None = None) -> list[str]:
    """Command-line arguments from engine options: `flags` maps an option to the flag that
    takes its value (left out when the option is None); `switches` maps a boolean option
    to a flag given alone when the option is true. In the order of the mappings."""
    args: list[str] = []
    for key, flag in flags.items():
        if options.get(key) is not None:
            args += [flag, str(options[key])]
    for key, flag in (switches or {}).items():
        if options.get(key):
            args.append(flag)
    return args
