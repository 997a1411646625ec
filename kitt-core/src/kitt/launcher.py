"""The one call that runs an engine: preflight -> resolve -> launch -> health -> yield ->
teardown, which always happens (success, exception, SIGINT, SIGTERM).

    with launch_engine("llamacpp", "model.gguf", mode="native") as running:
        ...  # talk to running.base_url

Everything that can be checked before starting (engine, mode, options, model format,
port, memory, binary or image) is, so bad input fails with exit 2 and nothing to clean.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kitt import preflight
from kitt.engine import ImageChoice, Launch
from kitt.errors import BadInput
from kitt.files import kitt_home
from kitt.images import EnginesFile, ensure_image, load_engines_file, resolve_image
from kitt.runtime import signals
from kitt.runtime.health import wait_until_healthy
from kitt.runtime.server import RunningEngine, Server

if TYPE_CHECKING:
    from kitt.engine import Engine
    from kitt.formats import ModelInfo
    from kitt.model import EngineConfig

DEFAULT_READY_TIMEOUT_S = 600.0


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@contextmanager
def launch_engine(
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
    run_id: str | None = None,
    log_dir: Path | None = None,
    engines_file: EnginesFile | None = None,
    progress: Callable[[str], None] | None = None,
) -> Iterator[RunningEngine]:
    """Run `engine` on `model` until the block ends; yields a healthy `RunningEngine`."""
    with signals.handle_signals():
        eng = preflight.find_engine(engine)
        preflight.check_mode(eng, mode)
        if network not in ("bridge", "host"):
            raise BadInput(f"unknown network {network!r}",
                                     hint="use bridge or host")
        engines_file = engines_file if engines_file is not None else load_engines_file()
        opts = preflight.check_options(
            eng, {**engines_file.engine_options.get(eng.name, {}), **(options or {})})
        info = preflight.check_model(eng, model)
        port = port or eng.default_port
        attached = mode == "native" and _attach(eng, host, port, opts)  # see Engine.attach
        if not attached:
            preflight.check_port_free(host, port)
        run_id = run_id or new_run_id()
        log_dir = log_dir or kitt_home() / "logs"
        preflight.check_resources(info, log_dir)
        log_path = log_dir / f"{run_id}-{eng.name}.log"
        served = served_name or _model_name(info)
        connect = "127.0.0.1" if host in ("0.0.0.0", "") else host
        base_url = f"http://{connect}:{port}"

        start: Callable[[], Server]
        record_path: Path | None = None
        image_name = None
        if attached:
            def start() -> Server:
                return AttachedServer(log_path)
        elif mode == "native":
            preflight.check_native_binary(eng, opts)
            argv = eng.native_command(Launch(str(info.path or info.reference), port, host,
                                             served, opts, tuple(extra_args)))

            def start() -> Server:
                nonlocal record_path
                from kitt.runtime.native import NativeServer, record

                server = NativeServer(argv, log_path)
                record_path = record(kitt_home() / "running", run_id, server)
                return server
        else:
            from kitt.runtime import docker as docker_runtime

            client = docker_runtime.docker_client()
            choice = ImageChoice(image, "--image") if image else resolve_image(
                eng, engines_file=engines_file)
            ensure_image(client, choice, engine=eng.name, auto_pull=auto_pull,
                         progress=progress)
            image_name = choice.image
            inner_port = port if network == "host" else eng.default_port
            source, inner_model = _container_model(info, eng)
            spec = eng.container_spec(
                Launch(inner_model, inner_port, host if network == "host" else "0.0.0.0",
                       served, opts, tuple(extra_args)),
                choice.image,
            )
            labels = {docker_runtime.LABEL_MANAGED: "true", docker_runtime.LABEL_RUN: run_id,
                      docker_runtime.LABEL_ENGINE: eng.name,
                      docker_runtime.LABEL_MODEL: info.reference[-200:]}

            def start() -> Server:
                return docker_runtime.DockerServer(
                    client, spec, name=f"kitt-{eng.name}-{run_id}", labels=labels, host=host,
                    host_port=port, model_source=source, network=network,
                    gpus=docker_runtime.has_gpus(), log_path=log_path)

        server: Server | None = None
        try:
            with signals.critical():  # a signal here must not orphan what just started
                server = start()
            wait_until_healthy(base_url + eng.health_path, eng.is_healthy,
                               exit_status=server.exit_status, timeout_s=ready_timeout_s,
                               log_path=log_path, what=f"{eng.name} ({mode})")
            served = eng.prepare(base_url, Launch(str(info.path or info.reference), port, host,
                                                  served, opts, tuple(extra_args))) or served
            running = RunningEngine(
                engine=eng.name, mode=mode, base_url=base_url, port=port, model=model,
                model_path=str(info.path) if info.path else None, served_name=served,
                api=eng.api, run_id=run_id, log_path=log_path, server=server,
                pid=getattr(server, "pid", None),
                container_id=getattr(server, "container_id", None),
                container_name=getattr(server, "name", None), image=image_name,
                options=opts, version=_version(eng, base_url),
            )
            signals.raise_pending()
            yield running
        finally:
            with signals.tearing_down():
                if server is not None:
                    server.stop(eng.stop_grace_s)
                if record_path is not None:
                    record_path.unlink(missing_ok=True)


@contextmanager
def launch_from_config(config: EngineConfig, model: str, **kwargs: Any
                       ) -> Iterator[RunningEngine]:
    """`launch_engine` from a recorded or suite-given `kitt.EngineConfig`."""
    with launch_engine(config.engine, model, mode=config.mode, port=config.port,
                       image=config.image, options=dict(config.options),
                       extra_args=tuple(config.extra_args), **kwargs) as running:
        yield running


def _model_name(info: ModelInfo) -> str:
    if info.path is None:
        return info.reference
    name = info.path.name if info.path.is_dir() else info.path.stem
    return name.split("-00001-of-")[0]


def _container_model(info: ModelInfo, eng: Engine) -> tuple[Path | None, str]:
    """(host folder to mount, model path inside the container)."""
    mount = "/models"
    if info.path is None:  # a tag the engine resolves itself (Ollama)
        return None, info.reference
    path = info.path.resolve()
    if path.is_dir():
        return path, mount
    return path.parent, f"{mount}/{path.name}"


def _version(eng: Engine, base_url: str) -> str | None:
    try:
        return eng.version(base_url)
    except Exception:  # a version is nice to record, never worth failing a run
        return None


# -- engines that reuse a server already running (Engine.attach) ---------------------------

def _attach(eng: Engine, host: str, port: int, options: dict[str, Any]) -> bool:
    connect = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        return eng.attach(f"http://{connect}:{port}", options)
    except Exception:  # an engine's probe failing means "nothing to attach to"
        return False


class AttachedServer:
    """A server KITT did not start: never stopped, and KITT cannot see it exit."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("attached to a server that was already running; "
                            "its log is wherever that server writes it\n")

    def exit_status(self) -> str | None:
        return None

    def stop(self, grace_s: float) -> None:
        return None
