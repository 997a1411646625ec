"""`kitt stack` and `kitt monitoring`: thin commands over generate and lifecycle."""

from __future__ import annotations

import json
from pathlib import Path

import click

import kitt


def _pairs(values: tuple[str, ...], option: str, *, bare: str | None = None,
           number: bool = False) -> dict[str, str | int]:
    """SERVICE=VALUE options (a bare value means `bare`)."""
    found: dict[str, str | int] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep:
            if bare is None:
                raise kitt.BadInput(f"{option} {value!r} is not SERVICE=VALUE",
                                    hint=f"e.g. {option} grafana=3001")
            key, rest = bare, value
        if number:
            if not rest.isdigit() or not 0 < int(rest) < 65536:
                raise kitt.BadInput(f"{option} {value!r}: {rest!r} is not a port",
                                    hint=f"give a number from 1 to 65535, e.g. {option} 8443")
            found[key] = int(rest)
        else:
            if not rest or any(c.isspace() for c in rest):
                raise kitt.BadInput(f"{option} {value!r}: not an image reference",
                                    hint=f"e.g. {option} postgres=postgres:16")
            found[key] = rest
    return found


def _say(line: str) -> None:
    click.echo(line, err=True)


def _print(rows: list[dict], columns: tuple[str, ...], as_json: bool, extra: dict) -> None:
    if as_json:
        click.echo(json.dumps({**extra, "services": rows}, indent=2))
        return
    widths = [max([len(c), *(len(str(r.get(c) or "-")) for r in rows)]) for c in columns]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        click.echo("  ".join(str(row.get(c) or "-").ljust(w)
                             for c, w in zip(columns, widths, strict=True)))


def _ssh_options(fn):
    """`--host` and how to log in there: the deployment copied there by `deploy`."""
    fn = click.option("--remote-dir", default=None, metavar="DIR",
                      help="Its folder on the host [default: ~/.kitt/KIND/NAME].")(fn)
    fn = click.option("--known-hosts", default=None, metavar="FILE",
                      help="known_hosts to check the host's key against "
                           "[default: ~/.ssh/known_hosts].")(fn)
    fn = click.option("--identity", default=None, metavar="KEY",
                      help="Private key to log in with [default: the SSH agent's, "
                           "~/.ssh/id_*].")(fn)
    return click.option("--host", default=None, metavar="[USER@]HOST[:PORT]",
                        help="On this host, over SSH (after `deploy`).")(fn)


def _ssh(host, identity, known_hosts):
    from kitt_web.deploy.remote import Host, Ssh

    return Ssh(Host.parse(host), identity, known_hosts)


def _lifecycle_commands(group: click.Group, kind: str, *, remote: bool = False) -> None:
    """start, stop, status, list and remove: the same for both kinds; `remote`: stop,
    status and remove also act on a copy `deploy` put on another host."""
    from kitt_web.deploy import folder as folders

    ssh_options = _ssh_options if remote else (lambda fn: fn)

    @group.command()
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def start(name, as_json):
        """Start NAME's services and wait until each is healthy."""
        from kitt_web.deploy import lifecycle

        deployment = folders.load(kind, name)
        lifecycle.start(deployment, _say)
        _print(lifecycle.status(deployment), ("service", "state", "health", "port"),
               as_json, {"name": name})

    @group.command()
    @click.argument("name")
    @ssh_options
    def stop(name, host=None, identity=None, known_hosts=None, remote_dir=None):
        """Stop NAME: its containers and networks go, its data volumes stay."""
        from kitt_web.deploy import lifecycle

        deployment = folders.load(kind, name)
        if host:
            from kitt_web.deploy import remote as remotes

            remotes.down(deployment, _ssh(host, identity, known_hosts),
                         remote_dir or remotes.default_dir(deployment))
            click.echo(f"{kind} {name}: stopped on {host} (data volumes kept)")
            return
        left = lifecycle.stop(deployment)
        kept = ", ".join(left["volumes"]) or "none"
        click.echo(f"{kind} {name}: stopped (data volumes kept: {kept})")

    @group.command()
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @ssh_options
    def status(name, as_json, host=None, identity=None, known_hosts=None, remote_dir=None):
        """Each service of NAME: state, health, port."""
        from kitt_web.deploy import lifecycle

        deployment = folders.load(kind, name)
        if host:
            from kitt_web.deploy import remote as remotes

            rows = remotes.status(deployment, _ssh(host, identity, known_hosts))
            _print(rows, ("service", "state", "health", "port"), as_json,
                   {"name": name, "host": host})
            return
        rows = lifecycle.status(deployment)
        _print(rows, ("service", "state", "health", "container", "port"), as_json,
               {"name": name, "folder": str(deployment.folder)})

    @group.command()
    @click.argument("name")
    @click.option("--prometheus", "url", default=None, metavar="URL",
                  help="Prometheus's address [default: NAME's, http://127.0.0.1:PORT].")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def targets(name, url, as_json):
        """What NAME's Prometheus scrapes, and whether each scrape works (its last error)."""
        from kitt_web.deploy import lifecycle

        deployment = folders.load(kind, name)
        if url is None:
            port = deployment.settings.get("ports", {}).get("prometheus")
            if port is None:
                raise kitt.BadInput(f"{kind} {name} has no Prometheus",
                                    hint="generate it with --monitoring, or give --prometheus")
            url = f"http://127.0.0.1:{port}"
        rows = lifecycle.scrape_targets(url)
        if as_json:
            click.echo(json.dumps({"name": name, "prometheus": url, "targets": rows},
                                  indent=2))
        else:
            _print(rows, ("job", "instance", "health", "error"), False, {})

    @group.command(name="list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def list_command(as_json):
        """Every generated deployment of this kind, and its folder."""
        found = [{"name": d.name, "services": ", ".join(d.services), "folder": str(d.folder),
                  "generated_at": d.settings.get("generated_at")}
                 for d in folders.list_all(kind)]
        if as_json:
            click.echo(json.dumps({kind: found}, indent=2))
        elif found:
            _print(found, ("name", "services", "generated_at", "folder"), False, {})
        else:
            click.echo(f"no {kind} yet: kitt {kind} generate NAME")

    @group.command()
    @click.argument("name")
    @click.option("--keep-volumes", is_flag=True, help="Keep the data volumes.")
    @click.option("--delete-files", is_flag=True,
                  help="Delete the generated folder too (its .env holds the secrets).")
    @ssh_options
    def remove(name, keep_volumes, delete_files, host=None, identity=None, known_hosts=None,
               remote_dir=None):
        """Take NAME down and forget it: containers, networks and (unless --keep-volumes)
        volumes go; the folder stays unless --delete-files. With --host: its copy on that
        host (the local folder stays)."""
        from kitt_web.deploy import lifecycle

        deployment = folders.load(kind, name)
        if host:
            from kitt_web.deploy import remote as remotes

            remotes.down(deployment, _ssh(host, identity, known_hosts),
                         remote_dir or remotes.default_dir(deployment),
                         volumes=not keep_volumes, delete_files=delete_files)
            click.echo(f"{kind} {name}: removed from {host}")
            return
        left = lifecycle.remove(deployment, keep_volumes=keep_volumes,
                                delete_files=delete_files)
        click.echo(f"{kind} {name}: removed" +
                   (f" (volumes kept: {', '.join(left['volumes'])})" if left["volumes"]
                    else "") + ("" if delete_files else f"; files kept in {deployment.folder}"))


@click.group()
def stack():
    """Docker Compose stacks: kitt-web, PostgreSQL, an agent, monitoring
    (docs/deployment.md)."""


@stack.command()
@click.argument("name")
@click.option("--web/--no-web", default=None,
              help="kitt-web with TLS from the stack's own CA [default: on, unless only "
                   "--agent is given with --server].")
@click.option("--postgres", is_flag=True, help="PostgreSQL as kitt-web's store.")
@click.option("--agent", is_flag=True, help="A kitt-agent (needs --models).")
@click.option("--monitoring", is_flag=True, help="Prometheus, Grafana and InfluxDB.")
@click.option("--no-grafana", is_flag=True,
              help="With --monitoring: no Grafana container (its provisioning is still "
                   "written, for a Grafana of your own).")
@click.option("--no-influxdb", is_flag=True, help="With --monitoring: no InfluxDB.")
@click.option("--port", "ports", multiple=True, metavar="[SERVICE=]PORT",
              help="A published port (kitt-web's when bare), e.g. --port 8443 --port "
                   "grafana=3001.")
@click.option("--image", "images", multiple=True, metavar="SERVICE=IMAGE",
              help="Another image: kitt, postgres, prometheus, grafana or influxdb.")
@click.option("--tls-san", "tls_sans", multiple=True, metavar="NAME",
              help="Another DNS name or address for kitt-web's certificate.")
@click.option("--server", default=None, metavar="URL",
              help="The KITT server the agent enrolls with (when the stack has no web).")
@click.option("--pin", default=None, metavar="sha256//BASE64", help="That server's key pin.")
@click.option("--models", default=None, metavar="DIR",
              help="The host folder the agent keeps models in.")
@click.option("--gpus/--no-gpus", default=None,
              help="Reserve the host's NVIDIA GPUs for the agent [default: when present].")
@click.option("--engine", "engines", multiple=True, metavar="HOST:PORT",
              help="An engine's own /metrics for Prometheus (repeatable).")
@click.option("-t", "--target", "nodes", multiple=True, metavar="HOST:PORT",
              help="Another Prometheus target, e.g. a node exporter (repeatable).")
def generate(name, web, postgres, agent, monitoring, no_grafana, no_influxdb, ports, images,
             tls_sans, server, pin, models, gpus, engines, nodes):
    """Write KITT_HOME/stacks/NAME/: docker-compose.yaml, .env (fresh secrets, mode 0600)
    and every config its services need. Regenerating keeps the secrets."""
    from kitt_web.deploy import folder as folders
    from kitt_web.deploy import generate as gen
    from kitt_web.deploy import monitoring as mon
    from kitt_web.deploy.compose import check_ports_free
    from kitt_web.deploy.services import LOOPBACK_ONLY
    from kitt_web.tls import check_san

    folders.check_name(name)
    if web is None:
        web = not (agent and server)
    if (no_grafana or no_influxdb) and not monitoring:
        raise kitt.BadInput("--no-grafana and --no-influxdb go with --monitoring",
                            hint="add --monitoring")
    dropped = {"grafana"} if no_grafana else set()
    dropped |= {"influxdb"} if no_influxdb else set()
    chosen = tuple(s for s in gen.MONITORING_SERVICES if monitoring and s not in dropped)
    options = gen.StackOptions(
        web=web, postgres=postgres, agent=agent, monitoring=chosen,
        ports=_pairs(ports, "--port", bare="kitt-web", number=True),
        images=_pairs(images, "--image"), tls_sans=tuple(check_san(n) for n in tls_sans),
        server=server, pin=pin, models=models,
        gpus=Path("/dev/nvidiactl").exists() if gpus is None else gpus,
        engines=mon.targets(engines, "--engine"), nodes=mon.targets(nodes, "-t"))
    target = folders.folder_of("stack", name)
    if not (target / folders.REGISTRY_FILE).exists():  # a running stack holds its ports
        names = gen.stack_services(options)
        check_ports_free({s: ("127.0.0.1" if s in LOOPBACK_ONLY else "0.0.0.0", p)
                          for s, p in gen.published_ports(names, options.ports).items()})
    written = gen.generate_stack(name, options)
    click.echo(f"stack {name}: {', '.join(gen.stack_services(options))}")
    click.echo(f"  files:   {written}")
    click.echo(f"  secrets: {written / '.env'} (mode 0600)")
    click.echo(f"  start:   kitt stack start {name}")


_lifecycle_commands(stack, "stack")


@click.group(name="monitoring")
def monitoring_group():
    """Prometheus, Grafana and InfluxDB for KITT and the GPU hosts (docs/monitoring.md)."""


@monitoring_group.command(name="generate")
@click.argument("name")
@click.option("-t", "--target", "nodes", multiple=True, metavar="HOST:PORT",
              help="A Prometheus target, e.g. a GPU host's node exporter (repeatable).")
@click.option("--engine", "engines", multiple=True, metavar="HOST:PORT",
              help="An engine's own /metrics (repeatable).")
@click.option("--kitt-web", default=None, metavar="HOST:PORT",
              help="A kitt-web to scrape (its token from KITT_METRICS_TOKEN).")
@click.option("--kitt-web-ca", default=None, metavar="FILE", help="That kitt-web's CA.")
@click.option("--port", "ports", multiple=True, metavar="SERVICE=PORT",
              help="A published port: prometheus, grafana or influxdb.")
@click.option("--image", "images", multiple=True, metavar="SERVICE=IMAGE",
              help="Another image: prometheus, grafana or influxdb.")
@click.option("--no-grafana", is_flag=True,
              help="No Grafana container (its provisioning is still written, for a Grafana "
                   "of your own).")
def monitoring_generate(name, nodes, engines, kitt_web, kitt_web_ca, ports, images,
                        no_grafana):
    """Write KITT_HOME/monitoring/NAME/: Prometheus's configuration, Grafana's provisioning
    and dashboards, and the Compose file that runs them with InfluxDB."""
    from kitt_web.deploy import folder as folders
    from kitt_web.deploy import generate as gen
    from kitt_web.deploy import monitoring as mon

    folders.check_name(name)
    written = gen.generate_monitoring(
        name, nodes=mon.targets(nodes, "-t"), engines=mon.targets(engines, "--engine"),
        kitt_web=mon.check_target(kitt_web, "--kitt-web") if kitt_web else None,
        kitt_web_ca=kitt_web_ca, ports=_pairs(ports, "--port", number=True),
        images=_pairs(images, "--image"), grafana=not no_grafana)
    click.echo(f"monitoring {name}: prometheus, {'' if no_grafana else 'grafana, '}influxdb")
    click.echo(f"  files:   {written}")
    click.echo(f"  start:   kitt monitoring start {name}")


@monitoring_group.command()
@click.argument("name")
@_ssh_options
def deploy(name, host, identity, known_hosts, remote_dir):
    """Copy NAME's folder to another host over SSH and start it there with that host's
    compose tool, waiting until each service is healthy."""
    from kitt_web.deploy import folder as folders
    from kitt_web.deploy import remote as remotes

    if not host:
        raise kitt.BadInput("deploy needs --host", hint="--host [USER@]HOST[:PORT]")
    deployment = folders.load("monitoring", name)
    target = remotes.deploy(deployment, _ssh(host, identity, known_hosts),
                            remote_dir or remotes.default_dir(deployment), _say)
    click.echo(f"monitoring {name}: running on {host} in {target}")


_lifecycle_commands(monitoring_group, "monitoring", remote=True)

