"""Preflight: every check that can run before anything starts, in one call.

`check(...)` validates the engine, mode, network, options, model format, port, memory,
disk, the native binary or the Docker daemon and image, and returns a `LaunchPlan`: all
that `launcher.launch` needs, decided. Each failure is a `BadInput` (exit 2) naming the
problem and the fix, so nothing is left to clean up. `check_external` is the same for an
engine KITT does not launch (`kitt run --url`).
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from kitt import plugins
from kitt._engines.formats import ModelInfo, detect_format
from kitt._engines.images import (
    LOCAL_PREFIX,
    EnginesFile,
    image_present,
    load_engines_file,
    resolve_image,
)
from kitt._engines.sibling import own_container
from kitt.engine import ContainerSpec, Engine, ImageChoice, Launch
from kitt.errors import BadInput, EngineFailed
from kitt.records import EngineConfig, Fingerprint

if TYPE_CHECKING:
    from docker import DockerClient

# Below this much free space in the log folder, writing engine logs may fail mid-run.
MIN_LOG_DISK_MIB = 64
# Engines need memory beyond the weights (KV cache, buffers); this fraction is a floor.
MEMORY_OVERHEAD = 1.1
DEFAULT_READY_TIMEOUT_S = 600.0
NETWORKS = ("bridge", "host")
MODEL_MOUNT = "/models"


@attrs.frozen
class DockerPlan:
    """Docker mode: the daemon, the image (and whether to get it first) and the
    container to run."""

    client: DockerClient = attrs.field(eq=False, repr=False)
    image: ImageChoice
    fetch: bool
    """The image is absent and --auto-pull was given: pull or build it first."""
    spec: ContainerSpec
    model_source: Path | None
    """The host folder mounted read-only at the spec's model mount (None for a tag)."""
    network: str
    """`bridge` (a published port), `host`, or `container:ID` (KITT's own namespace,
    when KITT itself runs in a container)."""


@attrs.frozen
class LaunchPlan:
    """A launch with every decision made: what `launcher.launch` starts."""

    engine: Engine = attrs.field(eq=False)
    mode: str
    model: str
    """The model as the user named it."""
    info: ModelInfo
    host: str
    port: int
    base_url: str
    served_name: str
    options: dict[str, Any]
    """The engine's options, validated, defaults filled in."""
    extra_args: tuple[str, ...]
    ready_timeout_s: float
    attached: bool = False
    """A server of this engine already answers on the port and is used as it is."""
    argv: tuple[str, ...] = ()
    """Native mode: the server's command line."""
    binary: Path | None = None
    """Native mode: the server executable (or interpreter) found."""
    docker: DockerPlan | None = None

    @property
    def launch(self) -> Launch:
        """The engine's view of this launch (host paths; what `prepare` receives)."""
        return Launch(str(self.info.path or self.info.reference), self.port, self.host,
                      self.served_name, self.options, self.extra_args)


def check(
    engine: str,
    model: str,
    *,
    mode: str = "native",
    port: int | None = None,
    host: str = "127.0.0.1",
    served_name: str | None = None,
    options: dict[str, Any] | None = None,
    extra_args: tuple[str, ...] = (),
    image: str | None = None,
    network: str = "bridge",
    auto_pull: bool = False,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    log_dir: Path,
    engines_file: EnginesFile | None = None,
    hardware: Callable[[], Fingerprint] | None = None,
) -> LaunchPlan:
    """Check everything about launching `engine` on `model`; the plan to launch it.

    `log_dir` is where the engine's log will go (checked for disk space, not created).
    `hardware` gives the host's fingerprint when an image must be chosen for it (Docker
    mode); it is called only then.
    """
    eng = find_engine(engine)
    check_mode(eng, mode)
    if network not in NETWORKS:
        raise BadInput(f"unknown network {network!r}", hint="use bridge or host")
    engines_file = engines_file if engines_file is not None else load_engines_file()
    opts = check_options(eng, {**engines_file.engine_options.get(eng.name, {}),
                               **(options or {})})
    info = check_model(eng, model)
    port = port or eng.default_port
    connect = "127.0.0.1" if host in ("0.0.0.0", "") else host
    base_url = f"http://{connect}:{port}"
    attached = mode == "native" and _attaches(eng, base_url, opts)
    if not attached:
        check_port_free(host, port)
    check_resources(info, log_dir)
    plan = LaunchPlan(eng, mode, model, info, host, port, base_url,
                      served_name or _model_name(info), opts, tuple(extra_args),
                      ready_timeout_s, attached=attached)
    if attached:
        return plan
    if mode == "native":
        binary = check_native_binary(eng, opts)
        return attrs.evolve(plan, argv=tuple(eng.native_command(plan.launch)), binary=binary)
    return attrs.evolve(plan, docker=_docker_plan(plan, image, network, auto_pull,
                                                  engines_file, hardware))


def check_config(config: EngineConfig, model: str, **kwargs: Any) -> LaunchPlan:
    """`check` for a recorded or suite-given `kitt.EngineConfig`."""
    return check(config.engine, model, mode=config.mode, port=config.port,
                 image=config.image, options=dict(config.options),
                 extra_args=tuple(config.extra_args), **kwargs)


def find_engine(name: str) -> Engine:
    engines = plugins.engines()
    if name in engines:
        return engines[name]
    known = ", ".join(sorted(engines)) or "none"
    raise BadInput(f"engine {name!r} is not installed (installed engines: {known})",
                   hint=f"install its plugin, e.g. `pip install kitt-engine-{name}`, "
                        "then check `kitt engines list`")


def check_mode(engine: Engine, mode: str) -> None:
    if mode not in engine.modes:
        raise BadInput(f"engine {engine.name} does not run in {mode} mode "
                       f"(modes: {', '.join(engine.modes)})",
                       hint=f"use --mode {engine.modes[0]}")


def check_options(engine: Engine, options: dict[str, Any]) -> dict[str, Any]:
    """The engine's options validated against its `Options` class, defaults filled in."""
    if engine.Options is None:
        return dict(options)
    fields = {f.name for f in attrs.fields(engine.Options)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise BadInput(f"engine {engine.name} has no option {unknown[0]!r} "
                       f"(options: {', '.join(sorted(fields))})",
                       hint="check the option name (see docs/engines.md)")
    try:
        return attrs.asdict(engine.Options(**options))
    except (TypeError, ValueError) as exc:
        raise BadInput(f"bad option for engine {engine.name}: {exc}",
                       hint="see docs/engines.md for each option's type") from None


def check_model(engine: Engine, model: str) -> ModelInfo:
    """The model, detected from its contents, in a format `engine` serves."""
    info = detect_format(model)
    served = ", ".join(engine.formats)
    if not info.ok:
        raise BadInput(f"model {model!r} cannot be used: {info.problem} "
                       f"(engine {engine.name} serves: {served})", hint=info.fix)
    assert info.format is not None
    if info.format in engine.formats:
        return info
    for fmt, path in info.alternatives.items():
        if fmt in engine.formats:  # e.g. a GGUF beside the safetensors of a folder
            return detect_format(str(path))
    raise BadInput(
        f"model {model!r} is {info.describe()}, but engine {engine.name} serves: {served}",
        hint=_format_fix(info.format, engine),
    )


def _format_fix(fmt: str, engine: Engine) -> str:
    others = sorted(name for name, other in plugins.engines().items()
                    if fmt in other.formats and name != engine.name)
    use = f"use an engine that serves {fmt} ({', '.join(others)}), or " if others else ""
    if "gguf" in engine.formats and fmt in ("safetensors", "pytorch"):
        return (f"{use}convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) "
                f"for {engine.name}")
    if fmt == "gguf":
        return f"{use}give {engine.name} the original Hugging Face model folder"
    if fmt == "ollama":
        return f"{use}give {engine.name} a local model path, not an Ollama tag"
    return f"{use}give a model in one of: {', '.join(engine.formats)}"


def port_problem(host: str, port: int) -> str | None:
    """Why nothing could listen on `host`:`port` now: "in use", or the system's reason;
    None when something could."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so connections of a stopped server lingering in
        # TIME_WAIT do not block them; only a live listener does. Check the same way.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return "in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return None


def check_port_free(host: str, port: int) -> None:
    problem = port_problem(host, port)
    if problem == "in use":
        raise BadInput(f"port {port} on {host} is already in use",
                       hint="stop whatever listens there, or choose another with --port")
    if problem is not None:
        raise BadInput(f"cannot listen on {host}:{port}: {problem}",
                       hint="choose another --port or host")


def check_resources(info: ModelInfo, log_dir: Path) -> None:
    """Enough memory for the weights and enough disk for the engine's log."""
    available = _available_memory_bytes()
    needed = int(info.size_bytes * MEMORY_OVERHEAD)
    if available is not None and needed > available:
        raise BadInput(f"model {info.reference!r} needs about {needed >> 20} MiB of memory, "
                       f"but only {available >> 20} MiB is available",
                       hint="free memory, or use a smaller (quantized) model")
    existing = log_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the log folder is made at launch, not here
    free = shutil.disk_usage(existing).free
    if free < MIN_LOG_DISK_MIB << 20:
        raise BadInput(f"only {free >> 20} MiB free in {existing} for engine logs",
                       hint="free disk space, or set KITT_HOME to another disk")


def _available_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def check_native_binary(engine: Engine, options: dict[str, Any]) -> Path:
    binary = engine.find_native_binary(options)
    if binary is None:
        raise BadInput(f"the {engine.name} server is not installed for native mode",
                       hint=engine.install_hint or "install it, or set the engine's `binary` "
                                                   "option, or use --mode docker")
    return binary


def _docker_plan(plan: LaunchPlan, image: str | None, network: str, auto_pull: bool,
                 engines_file: EnginesFile, hardware: Callable[[], Fingerprint] | None
                 ) -> DockerPlan:
    from kitt._engines.docker import docker_client

    eng = plan.engine
    client = docker_client()
    if image:
        choice = ImageChoice(image, "--image")
    else:
        from kitt._fingerprint import host_fingerprint

        choice = resolve_image(eng, (hardware or host_fingerprint)(), engines_file)
    present = image_present(client, choice.image)
    if not present and not auto_pull:
        verb = "build" if choice.image.startswith(LOCAL_PREFIX) else "pull"
        raise BadInput(f"image {choice.image} for engine {eng.name} is not present",
                       hint=f"run `kitt engines setup {eng.name}` to {verb} it, or pass "
                            "--auto-pull")
    source, inner_model = _container_model(plan.info)
    sibling = own_container(client)
    if sibling is not None:  # KITT's own image: the engine is a sibling container
        source = sibling.host_path(source) if source is not None else None
        network = sibling.network_mode
    shared = network != "bridge"  # the engine listens in a namespace KITT is in
    inner = Launch(inner_model, plan.port if shared else eng.default_port,
                   plan.host if shared else "0.0.0.0", plan.served_name,
                   plan.options, plan.extra_args)
    return DockerPlan(client, choice, not present, eng.container_spec(inner, choice.image),
                      source, network)


def _model_name(info: ModelInfo) -> str:
    if info.path is None:
        return info.reference
    name = info.path.name if info.path.is_dir() else info.path.stem
    return name.split("-00001-of-")[0]


def _container_model(info: ModelInfo) -> tuple[Path | None, str]:
    """(host folder to mount, model path inside the container)."""
    if info.path is None:  # a tag the engine resolves itself (Ollama)
        return None, info.reference
    path = info.path.resolve()
    if path.is_dir():
        return path, MODEL_MOUNT
    return path.parent, f"{MODEL_MOUNT}/{path.name}"


def _attaches(engine: Engine, base_url: str, options: dict[str, Any]) -> bool:
    """Whether to use a server of `engine` that already answers (see `Engine.attach`)."""
    try:
        return engine.attach(base_url, options)
    except Exception:  # an engine's probe failing means "nothing to attach to"
        return False


# -- an engine KITT does not launch ---------------------------------------------------------

def check_external(base_url: str, engine: Engine, model: str) -> str:
    """Health of an engine already running at `base_url` (`kitt run --url`); returns the
    model name requests must use."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(base_url + engine.health_path, timeout=10) as response:
            healthy = engine.is_healthy(response.status, response.read())
    except urllib.error.HTTPError as exc:
        healthy = engine.is_healthy(exc.code, exc.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise EngineFailed(f"cannot reach {base_url}{engine.health_path}: {exc}",
                           hint="check --url and that the engine is running") from None
    if not healthy:
        raise EngineFailed(f"{base_url} is not healthy ({engine.health_path})",
                           hint="wait until the engine has loaded its model")
    if engine.api != "openai":
        return model
    try:
        with urllib.request.urlopen(base_url + "/v1/models", timeout=10) as response:
            served = [m["id"] for m in json.load(response).get("data", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return model
    return model if model in served or not served else served[0]
