"""A generated deployment on another host over SSH: `kitt monitoring deploy NAME --host
[USER@]HOST[:PORT]` copies the folder there (SFTP, modes kept: `.env` stays 0600) and
starts it with that host's compose tool; `status`, `stop` and `remove` take `--host`
too.

asyncssh does the SSH: the host key must be known (`~/.ssh/known_hosts`, or
`--known-hosts FILE`), never accepted blindly; the login uses the SSH agent or
`--identity FILE`. Remote commands are built from quoted arguments only (`shlex.join`),
so no name, path or value is read by the remote shell as syntax.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

import kitt
from kitt_web.deploy.compose import PROJECT_LABEL, SERVICE_LABEL
from kitt_web.deploy.folder import Deployment

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
READY_TIMEOUT_S = 300.0


@attrs.frozen
class Host:
    user: str | None
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> Host:
        user, _, rest = text.rpartition("@")
        if rest.startswith("["):  # [IPv6]:PORT
            host, _, tail = rest[1:].partition("]")
            port = tail[1:] if tail.startswith(":") else ("x" if tail else "22")
        else:
            host, _, port = rest.partition(":")
            port = port or "22"
        if (user and not _USER.fullmatch(user)) or not _HOST.fullmatch(
                f"[{host}]" if ":" in host else host) or not port.isdigit() \
                or not 0 < int(port) < 65536:
            raise kitt.BadInput(f"--host {text!r} is not [USER@]HOST[:PORT]",
                                hint="e.g. --host ops@gpu-1.lab or --host 10.0.0.5:2222")
        return cls(user or None, host, int(port))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}"


@attrs.frozen
class Ssh:
    host: Host
    identity: str | None = None
    known_hosts: str | None = None


async def _connect(ssh: Ssh):
    import asyncssh

    options: dict[str, Any] = {"port": ssh.host.port, "connect_timeout": 15}
    if ssh.host.user:
        options["username"] = ssh.host.user
    if ssh.identity:
        if not Path(ssh.identity).is_file():
            raise kitt.BadInput(f"--identity {ssh.identity} does not exist",
                                hint="give the private key that logs in to the host")
        options["client_keys"] = [ssh.identity]
    if ssh.known_hosts:
        if not Path(ssh.known_hosts).is_file():
            raise kitt.BadInput(f"--known-hosts {ssh.known_hosts} does not exist",
                                hint="give a known_hosts file that holds the host's key")
        options["known_hosts"] = ssh.known_hosts
    where = str(ssh.host)
    try:
        return await asyncssh.connect(ssh.host.host, **options)
    except asyncssh.HostKeyNotVerifiable:
        raise kitt.BadInput(f"the host key of {where} is not known here",
                            hint=f"check its fingerprint, then add it: ssh-keyscan -p "
                                 f"{ssh.host.port} {ssh.host.host} >> ~/.ssh/known_hosts "
                                 "(or give --known-hosts FILE)") from None
    except asyncssh.PermissionDenied:
        raise kitt.BadInput(f"{where} refused the login",
                            hint="give --identity KEY, or add the key to the SSH agent; "
                                 "--host USER@HOST for another user") from None
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise kitt.BadInput(f"cannot reach {where} over SSH: {exc or type(exc).__name__}",
                            hint="check the host name, the port and that sshd runs "
                                 "there") from None


async def _run(conn, argv: Sequence[str], *, cwd: str | None = None, check: bool = True,
               what: str = "") -> tuple[int, str, str]:
    command = shlex.join(argv)
    if cwd is not None:
        command = f"cd {shlex.quote(cwd)} && {command}"
    done = await conn.run(command, check=False)
    code = done.exit_status if done.exit_status is not None else 255
    out, err = str(done.stdout or ""), str(done.stderr or "")
    if check and code != 0:
        raise kitt.KittError(f"{what or argv[0]} failed on the host (exit {code}): "
                             f"{(err or out).strip()[-1000:]}",
                             hint="see the message above")
    return code, out, err


async def _compose_tool(conn, where: str) -> list[str]:
    code, _, err = await _run(conn, ["docker", "info", "--format", "{{.ServerVersion}}"],
                              check=False)
    if code != 0:
        raise kitt.BadInput(f"Docker is not reachable on {where}: {err.strip()[-300:]}",
                            hint="install and start Docker there, and let this user use it "
                                 "(the docker group)")
    for tool in (["docker", "compose"], ["docker-compose"]):
        if (await _run(conn, [*tool, "version"], check=False))[0] == 0:
            return tool
    raise kitt.BadInput(f"no compose tool on {where}",
                        hint="install docker-compose-plugin (or Debian's docker-compose) "
                             "there")


async def _remote_dir(conn, remote_dir: str) -> str:
    if remote_dir.startswith("~/"):
        _, home, _ = await _run(conn, ["sh", "-c", 'printf %s "$HOME"'])
        remote_dir = str(PurePosixPath(home) / remote_dir[2:])
    if not remote_dir.startswith("/"):
        raise kitt.BadInput(f"--remote-dir {remote_dir!r} is not absolute",
                            hint="give /path or ~/path")
    return remote_dir


def default_dir(deployment: Deployment) -> str:
    return f"~/.kitt/{deployment.folder.parent.name}/{deployment.name}"


async def _states(conn, project: str) -> dict[str, tuple[str, str | None]]:
    """service -> (state, health) of the project's containers on the host."""
    _, out, _ = await _run(conn, [
        "docker", "ps", "-a", "--filter", f"label={PROJECT_LABEL}={project}", "--format",
        f'{{{{.Label "{SERVICE_LABEL}"}}}}\t{{{{.State}}}}\t{{{{.Status}}}}'])
    found = {}
    for line in out.splitlines():
        service, _, rest = line.partition("\t")
        state, _, status = rest.partition("\t")
        health = next((h for h in ("unhealthy", "healthy", "starting") if f"({h}" in status
                       or f"health: {h}" in status), None)
        found[service] = (state, health)
    return found


async def _sftp(conn, host: Host):
    import asyncssh

    try:
        return await conn.start_sftp_client()
    except asyncssh.Error as exc:
        raise kitt.KittError(f"{host} offers no SFTP: {exc}",
                             hint="enable it in the host's sshd_config (Subsystem sftp "
                                  "...)") from None


async def _deploy(deployment: Deployment, ssh: Ssh, remote_dir: str,
                  say: Callable[[str], None]) -> str:
    conn = await _connect(ssh)
    async with conn:
        tool = await _compose_tool(conn, str(ssh.host))
        target = await _remote_dir(conn, remote_dir)
        await _run(conn, ["mkdir", "-p", "-m", "700", target], what="mkdir")
        say(f"{deployment.kind} {deployment.name}: copying {deployment.folder} to "
            f"{ssh.host}:{target}")
        sftp = await _sftp(conn, ssh.host)
        try:
            for path in sorted(deployment.folder.rglob("*")):
                remote = str(PurePosixPath(target) / path.relative_to(deployment.folder)
                             .as_posix())
                if path.is_dir():
                    await sftp.makedirs(remote, exist_ok=True)
                else:
                    await sftp.put(str(path), remote, preserve=True)
        finally:
            sftp.exit()
        say(f"{deployment.kind} {deployment.name}: starting on {ssh.host}")
        await _run(conn, [*tool, "--project-name", deployment.project, "--file",
                          "docker-compose.yaml", "up", "-d", "--remove-orphans"],
                   cwd=target, what="compose up")
        deadline = time.monotonic() + READY_TIMEOUT_S
        shown: dict[str, str] = {}
        while True:
            states = await _states(conn, deployment.project)
            for service in deployment.services:
                state, health = states.get(service, ("absent", None))
                text = state + (f" ({health})" if health else "")
                if shown.get(service) != text:
                    say(f"  {service}: {text}")
                    shown[service] = text
            waiting = [s for s in deployment.services
                       if states.get(s, ("absent", None))[0] != "running"
                       or states[s][1] not in (None, "healthy")]
            if not waiting:
                return target
            if time.monotonic() > deadline or any(
                    states.get(s, ("", None))[1] == "unhealthy" for s in waiting):
                raise kitt.KittError(f"{', '.join(waiting)} did not become healthy on "
                                     f"{ssh.host}",
                                     hint=f"see `docker logs` there ({deployment.project})")
            await asyncio.sleep(1.0)


def deploy(deployment: Deployment, ssh: Ssh, remote_dir: str,
           say: Callable[[str], None]) -> str:
    """Copy and start it on the host; the folder it went to."""
    return asyncio.run(_deploy(deployment, ssh, remote_dir, say))


async def _down(deployment: Deployment, ssh: Ssh, remote_dir: str, *, volumes: bool,
                delete_files: bool) -> None:
    conn = await _connect(ssh)
    async with conn:
        tool = await _compose_tool(conn, str(ssh.host))
        target = await _remote_dir(conn, remote_dir)
        await _run(conn, [*tool, "--project-name", deployment.project, "--file",
                          "docker-compose.yaml", "down", "--remove-orphans",
                          *(["-v"] if volumes else [])], cwd=target, what="compose down")
        if delete_files:
            await _run(conn, ["rm", "-rf", "--", target], what="rm")


def down(deployment: Deployment, ssh: Ssh, remote_dir: str, *, volumes: bool = False,
         delete_files: bool = False) -> None:
    asyncio.run(_down(deployment, ssh, remote_dir, volumes=volumes,
                      delete_files=delete_files))


async def _status(deployment: Deployment, ssh: Ssh) -> list[dict[str, Any]]:
    conn = await _connect(ssh)
    async with conn:
        states = await _states(conn, deployment.project)
    return [{"service": s, "state": states.get(s, ("absent", None))[0],
             "health": states.get(s, ("absent", None))[1],
             "port": deployment.settings.get("ports", {}).get(s)}
            for s in deployment.services]


def status(deployment: Deployment, ssh: Ssh) -> list[dict[str, Any]]:
    return asyncio.run(_status(deployment, ssh))
