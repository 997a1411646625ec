"""The compose tool and the Docker daemon, as `start`, `stop`, `status` and `remove` use
them. `docker compose` (v2) is preferred; Debian's `docker-compose` (v1.27+, which reads
the same Compose Specification files) is the fallback. Every call names the project and
runs in the deployment's folder, so `.env` is read from there."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence

import attrs

import kitt

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def compose_tool() -> list[str]:
    """The argv prefix of an installed compose tool; BadInput naming the fix if none."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy and subprocess.run([legacy, "version"], capture_output=True,
                                 check=False).returncode == 0:
        return [legacy]
    raise kitt.BadInput("no compose tool found (neither `docker compose` nor "
                        "`docker-compose` runs)",
                        hint="install Docker's compose plugin (docker-compose-plugin), or "
                             "Debian's docker-compose package")


def daemon():
    """A client of the daemon (DOCKER_HOST); BadInput naming the fix when it is down."""
    return kitt.docker_client()


def check_ports_free(ports: dict[str, tuple[str, int]]) -> None:
    """Each service's host port can be bound: what `up` would otherwise fail on halfway."""
    for service, (host, port) in ports.items():
        problem = kitt.port_problem(host, port)
        if problem is not None:
            raise kitt.BadInput(
                f"port {port} for {service} is "
                f"{'in use' if problem == 'in use' else f'unusable ({problem})'}",
                hint=f"stop what holds it, or generate again with --port {service}=OTHER")


@attrs.frozen
class Compose:
    tool: tuple[str, ...]
    project: str
    folder: str

    def run(self, *args: str, timeout: float = 600, check: bool = True
            ) -> subprocess.CompletedProcess:
        argv = [*self.tool, "--project-name", self.project, "--file", "docker-compose.yaml",
                *args]
        try:
            done = subprocess.run(argv, cwd=self.folder, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise kitt.KittError(f"`{' '.join(args)}` took longer than {timeout:.0f} s",
                                 hint="see `docker ps` and the services' logs") from None
        if check and done.returncode != 0:
            raise kitt.KittError(
                f"{' '.join(self.tool[-1:])} {args[0]} failed: "
                f"{(done.stderr or done.stdout).strip()[-1500:]}",
                hint="see the message above; `kitt stack status` shows each service")
        return done


@attrs.frozen
class ServiceState:
    service: str
    container: str
    state: str
    """created, running, restarting, exited, ..."""
    health: str | None
    """healthy, unhealthy, starting; None without a healthcheck."""

    @property
    def ready(self) -> bool:
        return self.state == "running" and self.health in (None, "healthy")


def states(client, project: str) -> list[ServiceState]:
    found = []
    for container in client.containers.list(all=True,
                                            filters={"label": f"{PROJECT_LABEL}={project}"}):
        health = container.attrs.get("State", {}).get("Health", {}).get("Status")
        found.append(ServiceState(container.labels.get(SERVICE_LABEL, "?"), container.name,
                                  container.status, health))
    return sorted(found, key=lambda s: s.service)


def wait_ready(client, project: str, services: Sequence[str], *, timeout: float,
               say: Callable[[str], None]) -> None:
    """Until every service runs and is healthy; KittError naming the ones that are not."""
    deadline = time.monotonic() + timeout
    shown: dict[str, str] = {}
    while True:
        current = {s.service: s for s in states(client, project)}
        for name in services:
            found = current.get(name)
            text = "absent" if found is None else \
                found.state + (f" ({found.health})" if found.health else "")
            if shown.get(name) != text:
                say(f"  {name}: {text}")
                shown[name] = text
        waiting = [n for n in services if n not in current or not current[n].ready]
        # A service that restarts is crash-looping (restart: on-failure / unless-stopped).
        failed = [n for n in waiting if n in current and
                  (current[n].state in ("exited", "dead", "restarting")
                   or current[n].health == "unhealthy")]
        if not waiting:
            return
        if failed or time.monotonic() > deadline:
            bad = failed or waiting
            raise kitt.KittError(
                f"{', '.join(bad)} did not become healthy"
                f"{'' if failed else f' in {timeout:.0f} s'}",
                hint="see `docker logs` of the container (names in `kitt stack status`)")
        time.sleep(1.0)  # health is polled by dockerd itself; this reads its verdict


def leftovers(client, project: str) -> dict[str, list[str]]:
    """What the project still has in Docker: containers, networks, volumes."""
    label = {"label": f"{PROJECT_LABEL}={project}"}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
        "volumes": [v.name for v in client.volumes.list(filters=label)],
    }
