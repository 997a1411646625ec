"""Docker-mode jobs inside the KITT image (`kitt-agent build` makes it), so a GPU host
needs Docker and the agent, nothing else: the same `kitt` command line, run by `docker
run` with the Docker socket, the agent's home (profiles, engines.yaml, the job's folder,
its store) and the model storage (read-only) mounted at their own paths, so every path in
the command means the same inside. The engine then runs beside it as a sibling container.

Without an image (none built, none set, or the setting "" for never) the agent's own
`kitt` runs the job, as it does for native-mode jobs. Every container carries the job's
id as a label: a cancel that had to SIGKILL the `docker run` client removes the
container too, and an agent that starts finds and removes those of jobs no longer
running.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import kitt

LABEL_JOB = "io.kitt.job-id"
LABEL_AGENT = "io.kitt.agent-id"
SOCKET = "/var/run/docker.sock"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def default_image() -> str:
    return f"kitt:{kitt.__version__}"


def choose_image(setting: str | None) -> str | None:
    """The image docker-mode jobs run in, or None for the agent's own kitt."""
    if setting == "" or shutil.which("docker") is None:
        return None
    wanted = setting or default_image()
    try:
        from docker.errors import ImageNotFound

        kitt.docker_client().images.get(wanted)
    except ImageNotFound:
        return None
    except kitt.KittError:  # no daemon: the job's own preflight will say so
        return None
    return wanted


def wrap(argv: tuple[str, ...], *, image: str, job_id: str, agent_id: str, home: Path,
         model_dir: Path) -> tuple[str, ...]:
    """`argv` (python -m kitt ...) as a `docker run` of the KITT image."""
    assert argv[1:3] == ("-m", "kitt"), argv
    name = "kitt-job-" + _UNSAFE.sub("-", job_id)
    storage = model_dir.resolve()
    for path in (kitt.docker_socket(), str(home.resolve()), str(storage)):
        if ":" in path:  # `--volume SOURCE:TARGET` cannot carry it
            raise kitt.BadInput(f"{path} holds ':', which a Docker volume cannot mount",
                                hint="move the agent's home or model storage to a path "
                                     "without ':'")
    # The storage is mounted read-only even when it lies inside the (writable) home.
    mounts = [f"{kitt.docker_socket()}:{SOCKET}", f"{home.resolve()}:{home.resolve()}",
              f"{storage}:{storage}:ro"]
    command = ["docker", "run", "--rm", "--name", name, "--label", f"{LABEL_JOB}={job_id}",
               "--label", f"{LABEL_AGENT}={agent_id}", "--env", f"KITT_HOME={home.resolve()}",
               "--env", f"DOCKER_HOST=unix://{SOCKET}", "--env", "PYTHONUNBUFFERED=1"]
    for mount in mounts:
        command += ["--volume", mount]
    if Path("/dev/nvidiactl").exists():
        command += ["--gpus", "all"]
    return (*command, image, *argv[3:])


def remove_containers(agent_id: str, job_id: str | None = None, *,
                      keep: frozenset[str] = frozenset()) -> list[str]:
    """Force-remove this agent's container of `job_id` (of every job but those in `keep`,
    when no id is given: another agent on the same host keeps its own); their names."""
    try:
        client = kitt.docker_client()
    except kitt.KittError:
        return []
    labels = [f"{LABEL_AGENT}={agent_id}", f"{LABEL_JOB}={job_id}" if job_id else LABEL_JOB]
    removed = []
    for found in client.containers.list(all=True, filters={"label": labels}):
        if found.labels.get(LABEL_JOB) in keep:
            continue
        found.remove(force=True)
        removed.append(found.name)
    return removed
