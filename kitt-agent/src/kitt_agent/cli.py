"""`kitt-agent`: enroll this host with a KITT server and run the jobs it is given
(docs/agents.md). Exit codes: 0 done, 2 bad input, 3 refused by the server (re-enroll)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import click

import kitt
from kitt_agent.jobs import SPOOL_STATES


def _home_option(fn):
    return click.option("--home", default=None, metavar="DIR",
                        help="The agent's home (default: KITT_AGENT_HOME, then KITT_HOME, "
                             "~/.kitt).")(fn)


@click.group()
@click.version_option(package_name="kitt-agent")
def cli():
    """KITT's agent for GPU servers: takes jobs from a KITT server, runs them, sends back
    logs and results. It always dials out; nothing listens on this host."""


@cli.command()
@click.option("--server", required=True, metavar="URL", help="The KITT server, https://HOST:PORT.")
@click.option("--pin", default=None, metavar="sha256//BASE64",
              help="The server's public key, as `kitt web` prints it (for its own CA).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A CA bundle that verifies the server (instead of the system's).")
@click.option("--name", default=None, help="This agent's name (default: the host name).")
@click.option("--models", "model_dir", default=None, metavar="DIR",
              help="Local model storage (default: HOME/models).")
@click.option("--force", is_flag=True, help="Enroll again over an existing agent.yaml.")
@_home_option
def init(server, pin, ca_file, name, model_dir, force, home):
    """Register this host with SERVER. The enrollment token comes from KITT_ENROLL_TOKEN
    (never an argument: process lists show those); without one, a server with open
    enrollment lists the agent as pending until an admin approves it."""
    from kitt_agent import config as agent_config

    home_dir = agent_config.agent_home(home)
    path = agent_config.config_path(home_dir)
    if path.exists() and not force:
        raise kitt.BadInput(f"{path} exists: this host is enrolled already",
                            hint="kitt-agent start; or --force to enroll again")
    if not server.startswith(("https://", "http://")):
        raise kitt.BadInput(f"bad --server {server!r}", hint="give https://HOST:PORT")
    name = name or socket.gethostname().split(".")[0]
    enrollment = os.environ.get("KITT_ENROLL_TOKEN") or None
    enrolled = _run(_register(server, pin, ca_file, name, enrollment))
    config = agent_config.AgentConfig(
        server=server.rstrip("/"), agent_id=enrolled["agent_id"], token=enrolled["token"],
        name=enrolled["name"], pin=pin, ca_file=str(Path(ca_file).resolve()) if ca_file else None,
        model_dir=str(Path(model_dir).expanduser().resolve()) if model_dir else None)
    saved = agent_config.save(home_dir, config)
    click.echo(f"enrolled {config.name} as {config.agent_id} ({enrolled['state']}); "
               f"identity in {saved}")
    if enrolled["state"] == "pending":
        click.echo("pending: an admin approves it on the server's Agents page; "
                   "`kitt-agent start` waits for that")
    if server.startswith("http://"):
        click.echo("warning: plain HTTP: this agent's token crosses the network unencrypted",
                   err=True)


async def _register(server, pin, ca_file, name, enrollment):
    from kitt_agent.agent import register
    from kitt_agent.client import PinMismatch, ServerClient, Unreachable

    try:
        async with ServerClient(server, pin=pin, ca_file=ca_file) as client:
            return await register(client, name=name, enrollment=enrollment)
    except PinMismatch as exc:
        raise kitt.BadInput(f"{exc}", hint="check --pin against what `kitt web` prints "
                            "('agents pin ...'); someone may be in between") from None
    except Unreachable as exc:
        raise kitt.BadInput(f"cannot reach {exc}",
                            hint="check --server, and that kitt web is running") from None


def _run(coroutine):
    import asyncio

    return asyncio.run(coroutine)


@cli.command()
@_home_option
def start(home):
    """Run in the foreground until stopped (SIGTERM, Ctrl-C, `kitt-agent stop`), taking
    one job at a time. A service manager runs it this way (kitt-agent service install)."""
    from kitt_agent import config as agent_config
    from kitt_agent.agent import Agent

    home_dir = agent_config.agent_home(home)
    config = agent_config.load(home_dir)
    pid = _running_pid(home_dir)
    if pid is not None:
        raise kitt.BadInput(f"kitt-agent is already running here (pid {pid})",
                            hint="kitt-agent stop, or kitt-agent status")
    sys.exit(_run(Agent(home_dir, config).run()))


def _pid_file(home: Path) -> Path:
    return home / "agent" / "agent.pid"


def _running_pid(home: Path) -> int | None:
    try:
        pid = int(_pid_file(home).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


@cli.command()
@click.option("--timeout", type=float, default=120, show_default=True,
              help="Seconds to wait for it to stop.")
@_home_option
def stop(timeout, home):
    """Stop the running agent: it cancels a running job, reports it and exits."""
    from kitt_agent import config as agent_config

    home_dir = agent_config.agent_home(home)
    pid = _running_pid(home_dir)
    if pid is None:
        click.echo("kitt-agent is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _running_pid(home_dir) == pid and time.monotonic() < deadline:
        time.sleep(0.2)
    if _running_pid(home_dir) == pid:
        raise kitt.BadInput(f"kitt-agent (pid {pid}) did not stop in {timeout:.0f} s",
                            hint=f"kill -TERM {pid} again to exit at once")
    click.echo(f"stopped kitt-agent (pid {pid})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_home_option
def status(as_json, home):
    """This agent's identity, whether it runs, and the jobs in its spool."""
    from kitt_agent import config as agent_config
    from kitt_agent.jobs import spool

    home_dir = agent_config.agent_home(home)
    config = agent_config.load(home_dir)
    pid = _running_pid(home_dir)
    jobs = spool(home_dir)
    found = {"name": config.name, "agent_id": config.agent_id, "server": config.server,
             "running": pid is not None, "pid": pid, "home": str(home_dir), "jobs": jobs}
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"agent {config.name} ({config.agent_id}) of {config.server}: "
               f"{'running, pid ' + str(pid) if pid else 'not running'}")
    _print_jobs(jobs)


def _print_jobs(jobs: list[dict]) -> None:
    for job in jobs:
        code = f", exit {job['exit_code']}" if job["exit_code"] is not None else ""
        click.echo(f"  {job['job']} {job['kind']}: {job['state']}{code}"
                   f"{', reported' if job['reported'] else ''}")


@cli.group(name="test")
def test_group():
    """The jobs (tests) this agent holds in its spool."""


@test_group.command(name="list")
@click.option("--status", "state", default=None, type=click.Choice(SPOOL_STATES),
              help="Only jobs in this state.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_home_option
def test_list(state, as_json, home):
    """Jobs in this agent's spool, oldest first, with their state here."""
    from kitt_agent import config as agent_config
    from kitt_agent.jobs import spool

    jobs = [job for job in spool(agent_config.agent_home(home))
            if state is None or job["state"] == state]
    if as_json:
        click.echo(json.dumps({"jobs": jobs}, indent=2))
    elif jobs:
        _print_jobs(jobs)
    else:
        click.echo("no jobs" + (f" {state}" if state else ""))


@test_group.command(name="stop")
@click.argument("job_id")
@click.option("--timeout", type=float, default=60, show_default=True,
              help="Seconds between SIGTERM and SIGKILL.")
@_home_option
def test_stop(job_id, timeout, home):
    """Stop a running job from this host: SIGTERM (KITT stores what it measured), SIGKILL
    after --timeout. The agent reports it to the server as cancelled."""
    import asyncio

    from kitt_agent import config as agent_config
    from kitt_agent.jobs import JobRun, jobs_root

    home_dir = agent_config.agent_home(home)
    folder = jobs_root(home_dir) / job_id
    if "/" in job_id or not (folder / "job.json").is_file():
        raise kitt.BadInput(f"no job {job_id!r} in this agent's spool",
                            hint="see kitt-agent test list")
    run = JobRun(folder)
    if not run.alive():
        raise kitt.BadInput(f"job {job_id} is not running", hint="see kitt-agent test list")
    asyncio.run(run.cancel(timeout, "stopped on the host (kitt-agent test stop)"))
    click.echo(f"job {job_id}: stopped")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_home_option
def preflight(as_json, home):
    """What this host offers: engines and their modes (with why not), models in storage,
    free space, GPUs, and whether the server answers. Exit 1 when the server does not."""
    from kitt_agent import config as agent_config
    from kitt_agent import inventory

    home_dir = agent_config.agent_home(home)
    config = agent_config.load(home_dir)
    model_dir = Path(config.model_dir) if config.model_dir else home_dir / "models"
    found = inventory.collect(model_dir)
    found["server"] = _run(_health(config))
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        click.echo(f"server {config.server}: {found['server']}")
        for name, engine in found["engines"].items():
            why = "; ".join(f"{m}: {r}" for m, r in engine["unavailable"].items())
            click.echo(f"engine {name}: {', '.join(engine['modes']) or 'unavailable'}"
                       f"{f' ({why})' if why else ''}")
        where = found["kitt_image"] or "the agent's own kitt"
        click.echo(f"docker-mode jobs run in: {where}")
        storage = found["storage"]
        free = storage["free_bytes"]
        click.echo(f"models in {storage['dir']}: {len(found['models'])}; free "
                   f"{free / 1e9:.1f} GB" if free is not None else "free: unknown")
        for gpu in found["gpus"]:
            click.echo(f"gpu {gpu['index']} {gpu['name']}: {gpu['utilization_pct']}% busy, "
                       f"{gpu['memory_used_bytes'] / 2**30:.1f} of "
                       f"{gpu['memory_total_bytes'] / 2**30:.1f} GiB used")
    if found["server"] != "ok":
        sys.exit(1)


async def _health(config) -> str:
    from kitt_agent.client import PinMismatch, ServerClient, Unreachable

    try:
        async with ServerClient(config.server, pin=config.pin, ca_file=config.ca_file) as c:
            status, _ = await c.call("GET", "/api/v1/health", authorized=False)
            return "ok" if status == 200 else f"answered {status}"
    except (Unreachable, PinMismatch, kitt.BadInput) as exc:
        return str(exc)


@cli.command()
@click.option("--restart", is_flag=True,
              help="Restart the agent on the new version (systemd's unit if installed).")
@_home_option
def update(restart, home):
    """Install the kitt-agent version the server offers, each wheel checked against its
    SHA-256, only while no job runs here. Without --restart it takes effect at the
    agent's next start."""
    from kitt_agent import config as agent_config
    from kitt_agent import service as units
    from kitt_agent.client import PinMismatch, Unreachable
    from kitt_agent.update import update as install_update

    home_dir = agent_config.agent_home(home)
    config = agent_config.load(home_dir)
    try:
        before, after = install_update(home_dir, config)
    except (Unreachable, PinMismatch) as exc:
        raise kitt.BadInput(f"cannot fetch the update: {exc}",
                            hint="check that the server runs and the pin") from None
    if after is None:
        click.echo(f"kitt-agent {before} is what the server offers: up to date")
        return
    click.echo(f"updated kitt-agent {before} -> {after}")
    if not restart:
        click.echo("restart the agent to run it (kitt-agent update --restart does)", err=True)
        return
    for system in (False, True):
        if units.status(system=system)["installed"] and shutil.which("systemctl"):
            done = units.systemctl(system, "restart", units.UNIT)
            if done.returncode != 0:
                raise kitt.BadInput(f"systemctl restart failed: {done.stderr.strip()[:300]}")
            click.echo("restarted the kitt-agent service")
            return
    pid = _running_pid(home_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 180
        while _running_pid(home_dir) == pid and time.monotonic() < deadline:
            time.sleep(0.2)
    import subprocess

    log = home_dir / "agent" / "agent.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        started = subprocess.Popen([sys.executable, "-m", "kitt_agent.cli", "start"],
                                   stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
                                   env={**os.environ, "KITT_AGENT_HOME": str(home_dir)},
                                   start_new_session=True)
    click.echo(f"started kitt-agent {after} (pid {started.pid}; log {log})")


@cli.command()
@click.option("--tag", default=None, help="The image's tag [default: kitt:VERSION].")
@click.option("--base-image", default=None, metavar="IMAGE",
              help="The Dockerfile's BASE_IMAGE [default: python:3.12-slim].")
@click.option("--force", is_flag=True, help="Build even if this context was built.")
@_home_option
def build(tag, base_image, force, home):
    """Build the KITT image here from the build context the server serves, checked
    against its SHA-256 (docs/deployment.md)."""
    from kitt_agent import config as agent_config
    from kitt_agent.build import build as build_image
    from kitt_agent.client import PinMismatch, Unreachable

    config = agent_config.load(agent_config.agent_home(home))
    try:
        built, fresh = build_image(config, tag=tag, base_image=base_image, force=force,
                                   say=click.echo)
    except (Unreachable, PinMismatch) as exc:
        raise kitt.BadInput(f"cannot fetch the build context: {exc}",
                            hint="check that the server runs and the pin") from None
    click.echo(f"{built}: {'built' if fresh else 'already built from this context'}")


@cli.group()
def service():
    """The agent as a systemd service: install, uninstall, status."""


def _scope_option(fn):
    return click.option("--system", is_flag=True,
                        help="A system unit in /etc/systemd/system (root), running as "
                             "this user; default: a user unit.")(fn)


@service.command(name="install")
@_scope_option
@click.option("--no-start", is_flag=True, help="Only write the unit.")
@_home_option
def service_install(system, no_start, home):
    """Write the unit (restart on failure, after Docker and the network) and, unless
    --no-start, enable and start it."""
    from kitt_agent import config as agent_config
    from kitt_agent import service as units

    home_dir = agent_config.agent_home(home).resolve()
    config = agent_config.load(home_dir)
    path = units.install(home_dir, config.server, system=system, start=not no_start)
    click.echo(f"wrote {path}" + ("" if no_start else "; enabled and started"))


@service.command(name="uninstall")
@_scope_option
def service_uninstall(system):
    """Stop and disable the service and remove its unit."""
    from kitt_agent import service as units

    path = units.uninstall(system=system)
    click.echo(f"removed {path}" if path else "no kitt-agent unit is installed")


@service.command(name="status")
@_scope_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def service_status(system, as_json):
    """Whether the unit is installed, and systemd's word on it."""
    from kitt_agent import service as units

    found = units.status(system=system)
    if as_json:
        click.echo(json.dumps(found))
    else:
        click.echo(f"{found['unit']}: " + ("not installed" if not found["installed"] else
                                          f"installed, {found['active'] or 'systemd unknown'}"))


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except kitt.KittError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"  fix: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
