"""Launching what preflight planned: start -> health -> prepare -> yield -> teardown, which
always happens (success, exception, SIGINT, SIGTERM).

    plan = preflight.check("llamacpp", "model.gguf", log_dir=folder)
    with launch(plan, log_dir=folder) as running:
        ...  # talk to running.base_url

Every check is preflight's; the launcher only acts on the plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kitt._engines.health import wait_until_healthy
from kitt._engines.preflight import LaunchPlan
from kitt._engines.server import RunningEngine, Server
from kitt._util import signals
from kitt._util.files import kitt_home


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@contextmanager
def launch(plan: LaunchPlan, *, log_dir: Path, run_id: str | None = None,
           progress: Callable[[str], None] | None = None) -> Iterator[RunningEngine]:
    """Run the planned engine until the block ends; yields it once healthy."""
    say = progress or (lambda text: None)
    with signals.handle_signals():
        eng = plan.engine
        run_id = run_id or new_run_id()
        log_path = log_dir / f"{run_id}-{eng.name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        record_path: Path | None = None
        server: Server | None = None
        try:
            with signals.critical():  # a signal here must not orphan what just started
                server, record_path = _start(plan, run_id, log_path, progress)
            wait_until_healthy(plan.base_url + eng.health_path, eng.is_healthy,
                               exit_status=server.exit_status, timeout_s=plan.ready_timeout_s,
                               log_path=log_path, what=f"{eng.name} ({plan.mode})")
            served = eng.prepare(plan.base_url, plan.launch) or plan.served_name
            running = RunningEngine(
                engine=eng.name, mode=plan.mode, base_url=plan.base_url, port=plan.port,
                model=plan.model, model_path=str(plan.info.path) if plan.info.path else None,
                served_name=served, api=eng.api, run_id=run_id, log_path=log_path,
                server=server, pid=server.pid, container_id=server.container_id,
                container_name=server.name,
                image=plan.docker.image.image if plan.docker else None,
                options=plan.options, **_version(plan),
            )
            yield running
        except signals.Interrupted as stop:
            if server is not None:
                stop.note("the engine was left running (KITT did not start it)"
                          if plan.attached else "the engine was stopped")
            _let_go(stop)
            raise
        finally:
            with signals.tearing_down():
                if server is not None and not plan.attached:
                    say(f"stopping {eng.name} ({_where(server)}; kill after "
                        f"{eng.stop_grace_s:g} s)")
                    server.stop(eng.stop_grace_s)
                if record_path is not None:
                    record_path.unlink(missing_ok=True)


def _start(plan: LaunchPlan, run_id: str, log_path: Path,
           progress: Callable[[str], None] | None) -> tuple[Server, Path | None]:
    """The started server, and the record a crashed KITT's leftovers are found by."""
    if plan.attached:
        return AttachedServer(log_path), None
    if plan.docker is None:
        from kitt._engines.native import NativeServer, record

        server = NativeServer(plan.argv, log_path)
        return server, record(kitt_home() / "running", run_id, server)
    from kitt._engines import docker as docker_runtime
    from kitt._engines.images import get_image

    docker = plan.docker
    if docker.fetch:
        get_image(docker.client, docker.image, progress=progress)
    labels = {docker_runtime.LABEL_MANAGED: "true", docker_runtime.LABEL_RUN: run_id,
              docker_runtime.LABEL_ENGINE: plan.engine.name,
              docker_runtime.LABEL_MODEL: plan.info.reference[-200:]}
    server = docker_runtime.DockerServer(
        docker.client, docker.spec, name=f"kitt-{plan.engine.name}-{run_id}", labels=labels,
        host=plan.host, host_port=plan.port, model_source=docker.model_source,
        network=docker.network, gpus=docker_runtime.has_gpus(), log_path=log_path)
    return server, None


def _let_go(stop: BaseException) -> None:
    """Close what the interrupted work held before the engine is told to stop. A request
    blocked in a socket read stays open while the exception's traceback keeps its frames
    alive; clearing the frames that have finished (and collecting their cycles) closes
    it, so the engine sees its in-flight requests cancelled, not cut by its own stop."""
    import gc
    import traceback

    traceback.clear_frames(stop.__traceback__)
    gc.collect()


def _where(server: Server) -> str:
    return f"pid {server.pid}" if server.pid else f"container {server.name}"


def _version(plan: LaunchPlan) -> dict[str, str | None]:
    try:
        found = plan.engine.version(plan.base_url, plan.binary)
    except Exception:  # a version is nice to record, never worth failing a run
        found = None
    return {"version": found.version if found else None,
            "version_source": found.source if found else None}


class AttachedServer:
    """A server KITT did not start: never stopped, and KITT cannot see it exit."""

    pid: int | None = None
    container_id: str | None = None
    name: str | None = None

    def __init__(self, log_path: Path):
        self.log_path = log_path
        log_path.write_text("attached to a server that was already running; "
                            "its log is wherever that server writes it\n")

    def exit_status(self) -> str | None:
        return None

    def stop(self, grace_s: float) -> None:
        return None
