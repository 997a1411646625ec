"""Docker runtime: the engine's server in a labelled container, via the docker SDK.

Every container KITT starts carries `io.kitt.*` labels (run id, engine, model), so a run
that crashed can be cleaned up later (`kitt engines cleanup`). The SDK is imported
lazily: `kitt --help` must not pay for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kitt._util import signals
from kitt.errors import BadInput, EngineFailed

if TYPE_CHECKING:
    from docker import DockerClient

    from kitt.engine import ContainerSpec

LABEL = "io.kitt"
LABEL_MANAGED = f"{LABEL}.managed"
LABEL_RUN = f"{LABEL}.run-id"
LABEL_ENGINE = f"{LABEL}.engine"
LABEL_MODEL = f"{LABEL}.model"


def docker_client() -> DockerClient:
    """A client for DOCKER_HOST (or the default socket); BadInput when unreachable."""
    from kitt._util.extras import require_extra

    require_extra("docker", "Docker mode")
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as exc:
        raise BadInput(f"Docker is not reachable: {exc}",
                       hint="start dockerd, or set DOCKER_HOST to its socket "
                            "(e.g. unix:///var/run/docker.sock), or use --mode native"
                       ) from None
    return client


def docker_socket() -> str:
    """The daemon's socket on this host (DOCKER_HOST's when it is a unix socket), as a
    container that talks to the same daemon mounts it."""
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else \
        "/var/run/docker.sock"


def has_gpus() -> bool:
    """NVIDIA GPUs are visible, so containers ask for them (`--gpus all`)."""
    return Path("/dev/nvidiactl").exists()


class DockerServer:
    """A started container; `stop()` removes it, whatever state it is in."""

    pid: int | None = None

    def __init__(self, client: DockerClient, spec: ContainerSpec, *, name: str,
                 labels: Mapping[str, str], host: str, host_port: int,
                 model_source: Path | None, network: str, gpus: bool, log_path: Path):
        from docker.errors import APIError, ImageNotFound
        from docker.types import DeviceRequest, Mount

        self.client = client
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        mounts = []
        if model_source is not None:
            mounts.append(Mount(target=spec.model_mount, source=str(model_source),
                                type="bind", read_only=True))
        for volume, target in spec.volumes.items():
            mounts.append(Mount(target=target, source=volume, type="volume"))
        options: dict[str, Any] = {
            "command": list(spec.command), "name": name, "labels": dict(labels),
            "detach": True, "mounts": mounts, "environment": dict(spec.environment),
        }
        if spec.shm_size:
            options["shm_size"] = spec.shm_size
        if gpus:
            options["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
        if network != "bridge":  # host, or container:ID (KITT's own, see sibling.py)
            options["network_mode"] = network
        else:
            options["ports"] = {f"{spec.container_port}/tcp": (host, host_port)}
        self.container = None
        try:
            self.container = client.containers.run(spec.image, **options)
        except ImageNotFound:
            raise BadInput(f"image {spec.image} is not present",
                           hint="run `kitt engines setup ENGINE` or pass --auto-pull") from None
        except APIError as exc:
            # `run` creates before it starts: a failed start leaves a created container.
            remove_containers(client, {LABEL_RUN: labels[LABEL_RUN]})
            raise EngineFailed(f"cannot start container {name}: {exc.explanation or exc}",
                               hint="check the image, the port and dockerd's log") from None
        self.container_id = self.container.id
        self._log_thread = threading.Thread(target=self._stream_logs, daemon=True)
        self._log_thread.start()

    def _stream_logs(self) -> None:
        try:
            with self.log_path.open("ab") as log:
                for chunk in self.container.logs(stream=True, follow=True):
                    log.write(chunk)
                    log.flush()
        except Exception:  # the container went away: the log simply ends
            return

    def exit_status(self) -> str | None:
        from docker.errors import NotFound

        try:
            self.container.reload()
        except NotFound:
            return "container removed"
        if self.container.status in ("exited", "dead"):
            # The log stream ends with the container: let it finish so that callers
            # reporting the exit can show the last lines.
            self._log_thread.join(timeout=5)
            code = self.container.attrs.get("State", {}).get("ExitCode")
            return f"exit code {code}"
        return None

    def stop(self, grace_s: float) -> None:
        from docker.errors import APIError, NotFound

        try:
            if signals.forced():
                self.container.kill()
            else:
                self.container.stop(timeout=max(1, int(grace_s)))
        except (NotFound, APIError):
            pass  # already gone or already stopped: removal below settles it
        try:
            self.container.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            raise EngineFailed(f"could not remove container {self.name}: {exc}",
                               hint="run `kitt engines cleanup`") from None
        self._log_thread.join(timeout=5)


def kitt_containers(client: DockerClient, labels: Mapping[str, str] | None = None) -> list:
    filters = [f"{LABEL_MANAGED}=true", *(f"{k}={v}" for k, v in (labels or {}).items())]
    return client.containers.list(all=True, filters={"label": filters})


def remove_containers(client: DockerClient, labels: Mapping[str, str] | None = None
                      ) -> list[str]:
    """Force-remove every KITT container (matching `labels`); returns their names."""
    from docker.errors import APIError, NotFound

    removed = []
    for container in kitt_containers(client, labels):
        try:
            container.remove(force=True)
            removed.append(container.name)
        except NotFound:
            continue
        except APIError as exc:
            raise EngineFailed(f"could not remove container {container.name}: {exc}",
                               hint="check dockerd's log; `docker rm -f` it by hand") from None
    return removed
