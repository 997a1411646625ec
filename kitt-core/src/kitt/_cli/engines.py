"""`kitt engines list|check|setup|serve|cleanup|conformance`: thin commands over
`_engines` (preflight, launcher, images, runtimes, conformance)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from kitt._cli.options import engine_options, json_option, parse_engine_options
from kitt.errors import BadInput, EngineFailed
from kitt.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(engines_group)


def _err(message: str) -> None:
    click.echo(message, err=True)


@click.group(name="engines")
def engines_group():
    """Inference engines: list, check, set up, serve, clean up."""


# -- list / check -------------------------------------------------------------------------

@engines_group.command(name="list")
@json_option
def engines_list(as_json: bool):
    """Installed engines: formats, modes, native binary, image and its status."""
    from kitt import plugins
    from kitt._cli.output import print_json, print_table
    from kitt._engines.status import docker_or_reason, engine_status
    from kitt._fingerprint import host_fingerprint

    engines = plugins.engines()
    client, docker_error = docker_or_reason() if any(
        "docker" in e.modes for e in engines.values()) else (None, "not needed")
    host = host_fingerprint()
    rows = [engine_status(e, client=client, docker_error=docker_error, host=host)
            for _, e in sorted(engines.items())]
    if as_json:
        print_json(rows)
        return
    print_table(("engine", "also", "formats", "modes", "native binary", "image",
                 "image status"),
                ((r["name"], ", ".join(r["aliases"]), ", ".join(r["formats"]),
                  ", ".join(r["modes"]),
                  r["native_binary"] or ("not found" if "native" in r["modes"] else "n/a"),
                  r["image"] or "n/a", r["image_status"]) for r in rows))


@engines_group.command(name="check")
@click.argument("engine")
@json_option
def engines_check(engine: str, as_json: bool):
    """Explain which image ENGINE would use and why, and whether it can run here.

    Exits 0 when the engine can run in at least one mode, 1 otherwise."""
    from kitt._cli.output import print_fields, print_json
    from kitt._engines.images import load_engines_file
    from kitt._engines.preflight import find_engine
    from kitt._engines.status import docker_or_reason, engine_status
    from kitt._fingerprint import host_arch, host_fingerprint, max_compute_capability

    eng = find_engine(engine)
    engines_file = load_engines_file()  # a malformed file is an error here (exit 2)
    host = host_fingerprint()
    client, docker_error = docker_or_reason() if "docker" in eng.modes else (None, None)
    status = engine_status(eng, client=client, docker_error=docker_error, host=host)
    native_ok = status["native_binary"] is not None
    docker_ok = client is not None and status["image"] is not None
    status.update({
        "host_arch": host_arch(host), "host_compute_capability": max_compute_capability(host),
        "engines_file": str(engines_file.path) if engines_file.path else None,
        "docker": "reachable" if client is not None else docker_error,
        "native_ready": native_ok, "docker_ready": docker_ok and
        status["image_status"] == "present",
    })
    if as_json:
        print_json(status)
    else:
        print_fields([
            ("engine", f"{eng.name}: {eng.description}"),
            ("formats", ", ".join(eng.formats)), ("modes", ", ".join(eng.modes)),
            ("host", f"{status['host_arch']}, GPU compute capability "
                     f"{status['host_compute_capability'] or 'none'}"),
            ("native binary", status["native_binary"] or
             ("not found: " + eng.install_hint if "native" in eng.modes else "n/a")),
            ("image", status["image"] or "n/a"),
            ("image chosen because", status["image_reason"] or "n/a"),
            ("image status", status["image_status"]),
            ("docker", status["docker"] or "n/a"),
            ("engines.yaml", status["engines_file"] or "none"),
        ])
    if not (native_ok or docker_ok):
        sys.exit(1)


# -- setup / cleanup ----------------------------------------------------------------------

@engines_group.command(name="setup")
@click.argument("engine")
@click.option("--dry-run", is_flag=True, help="Say what would be pulled or built; do nothing.")
@click.option("--force-rebuild", is_flag=True, help="Rebuild a kitt/* image without cache.")
def engines_setup(engine: str, dry_run: bool, force_rebuild: bool):
    """Pull ENGINE's image, or build it for kitt/* images (with progress)."""
    from kitt._engines.images import (
        LOCAL_PREFIX,
        docker_dir,
        get_image,
        image_present,
        resolve_image,
    )
    from kitt._engines.preflight import find_engine
    from kitt._fingerprint import host_fingerprint

    eng = find_engine(engine)
    if "docker" not in eng.modes:
        _err(f"{eng.name} runs natively only: nothing to set up in Docker. "
             f"{eng.install_hint}")
        return
    choice = resolve_image(eng, host_fingerprint())
    local = choice.image.startswith(LOCAL_PREFIX)
    action = (f"build {choice.image} from {docker_dir() / (choice.build_context or '?')}"
              if local else f"pull {choice.image}")
    if dry_run:
        click.echo(f"would {action} ({choice.reason})")
        return
    from kitt._engines.docker import docker_client

    client = docker_client()
    if image_present(client, choice.image) and not force_rebuild:
        click.echo(f"{choice.image} is already present ({choice.reason})")
        return
    done = get_image(client, choice, force_rebuild=force_rebuild)
    click.echo(f"{done} {choice.image}")


@engines_group.command(name="cleanup")
@click.option("--dry-run", is_flag=True, help="List what would be removed.")
def engines_cleanup(dry_run: bool):
    """Remove containers and processes that crashed KITT runs left behind."""
    from kitt._engines.native import cleanup_recorded
    from kitt._util.files import kitt_home

    found = [f"native: {item}" for item in
             cleanup_recorded(kitt_home() / "running", dry_run=dry_run)]
    try:
        from kitt._engines.docker import docker_client, kitt_containers, remove_containers

        client = docker_client()
    except BadInput as exc:
        _err(f"kitt: docker not checked: {exc.message}")
    else:
        if dry_run:
            found += [f"container: {c.name}" for c in kitt_containers(client)]
        else:
            found += [f"container: {name}" for name in remove_containers(client)]
    verb = "would remove" if dry_run else "removed"
    for item in found:
        click.echo(f"{verb} {item}")
    if not found:
        click.echo("nothing to clean up")


# -- serve --------------------------------------------------------------------------------

@engines_group.command(name="serve")
@click.option("-m", "--model", required=True, help="Model file, folder or Ollama tag.")
@click.option("-e", "--engine", required=True, help="Engine name (see `kitt engines list`).")
@click.option("--mode", type=click.Choice(["native", "docker"]), default="native",
              show_default=True)
@click.option("--port", type=int, help="Host port (default: the engine's).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@engine_options
@click.option("--image", help="Container image (docker mode; overrides resolution).")
@click.option("--network", type=click.Choice(["bridge", "host"]), default="bridge",
              show_default=True, help="Container networking (docker mode).")
@click.option("--auto-pull", is_flag=True, help="Pull or build the image if missing.")
@click.option("--ready-timeout", type=float, default=600, show_default=True,
              help="Seconds to wait for the engine to become healthy.")
@click.option("--log-dir", type=click.Path(path_type=Path),
              help="Where the engine log goes [default: KITT_HOME/logs].")
@click.option("--json", "as_json", is_flag=True, help="Print the ready engine as JSON.")
@click.argument("extra_args", nargs=-1)
def engines_serve(model: str, engine: str, mode: str, port: int | None, host: str,
                  options: tuple[str, ...], image: str | None, network: str, auto_pull: bool,
                  ready_timeout: float, log_dir: Path | None, as_json: bool,
                  extra_args: tuple[str, ...]):
    """Launch ENGINE on MODEL, wait until healthy, print the base URL, serve until Ctrl-C.

    Arguments after `--` go to the engine's server unchanged."""
    from kitt._cli.output import print_json
    from kitt._engines import preflight
    from kitt._engines.launcher import launch
    from kitt._util import signals
    from kitt._util.files import kitt_home

    log_dir = log_dir or kitt_home() / "logs"
    with signals.handle_signals():  # a signal in preflight too ends with 128 + N
        plan = preflight.check(engine, model, mode=mode, port=port, host=host,
                               options=parse_engine_options(options), extra_args=extra_args,
                               image=image, network=network, auto_pull=auto_pull,
                               ready_timeout_s=ready_timeout, log_dir=log_dir)
        with launch(plan, log_dir=log_dir, progress=_err) as running:
            if as_json:
                print_json(running.to_json())
            else:
                click.echo(running.base_url)
            sys.stdout.flush()
            where = (f"pid {running.pid}" if running.pid
                     else f"container {running.container_name}")
            _err(f"kitt: {running.engine} ({running.mode}, {where}) serving {running.model} "
                 f"at {running.base_url}; log {running.log_path}; Ctrl-C stops it")
            while True:
                time.sleep(0.5)
                ended = running.exit_status()
                if ended is not None:
                    from kitt._engines.health import last_lines

                    raise EngineFailed(f"{running.engine} stopped on its own ({ended}). "
                                       f"Last log lines:\n{last_lines(running.log_path)}",
                                       hint=f"full log: {running.log_path}")


# -- conformance ------------------------------------------------------------------------

@engines_group.command(name="conformance")
@click.option("--url", "base_url", required=True, help="Base URL, e.g. http://127.0.0.1:8000.")
@click.option("-e", "--engine", help="Engine name (installed plugin) or API flavour: openai, "
                                     "tgi, ollama. Default: openai.")
@click.option("--model", help="Model name to request (default: the first the server lists).")
@click.option("--timeout", type=float, default=60, show_default=True,
              help="Seconds per request.")
@json_option
def engines_conformance(base_url: str, engine: str | None, model: str | None, timeout: float,
                        as_json: bool):
    """Check a running engine at URL for what KITT needs: health, completions, chat,
    streaming, usage in streams, prompt logprobs, tokenize, metrics.

    Prints a capability table and the scoring and token-counting modes KITT would use.
    Exits 0 when the endpoint can be benchmarked, 1 when it cannot."""
    from kitt._cli.output import print_json, print_table
    from kitt._engines.conformance import check

    if not base_url.startswith(("http://", "https://")):
        raise BadInput(f"bad URL {base_url!r}", hint="give a base URL like "
                                                     "http://127.0.0.1:8000")
    caps = check(base_url, engine=engine, model=model, timeout=timeout)
    if as_json:
        print_json(caps.to_json())
    else:
        print_table(("capability", "result", "detail"),
                    ((c.name, c.status, c.detail) for c in caps.checks),
                    title=f"{caps.base_url} ({caps.engine or caps.flavour} API, model "
                          f"{caps.model or 'unknown'})")
        click.echo(f"scoring mode: {caps.scoring_mode}  (loglikelihood needs prompt_logprobs)")
        click.echo(f"token counting: {caps.token_counting}  (usage > tokenize > chunks)")
        click.echo(f"usable for benchmarks: {'yes' if caps.usable else 'no'}")
    if not caps.usable:
        sys.exit(1)
