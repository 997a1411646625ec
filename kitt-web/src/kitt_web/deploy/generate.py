"""What `kitt stack generate` and `kitt monitoring generate` write.

A stack: kitt-web (TLS from the stack's own CA, its store in a volume or in PostgreSQL),
PostgreSQL, a kitt-agent, and monitoring (Prometheus, Grafana, InfluxDB). A monitoring
deployment: the monitoring services alone, scraping the targets given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

import kitt
from kitt_web.deploy import monitoring, services
from kitt_web.deploy.folder import (
    REGISTRY_FILE,
    dump_yaml,
    folder_of,
    new_secret,
    read_env,
    render_env,
    write_folder,
)

MONITORING_SERVICES = ("prometheus", "grafana", "influxdb")
TLS_FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem")
PRIVATE = frozenset({".env", "tls/ca-key.pem", "tls/server-key.pem"})
SCRAPE_TOKEN = "prometheus/kitt-token"


@attrs.frozen
class StackOptions:
    web: bool = True
    postgres: bool = False
    agent: bool = False
    monitoring: tuple[str, ...] = ()
    """Which of MONITORING_SERVICES the stack runs (Prometheus always, when any)."""
    ports: dict[str, int] = attrs.field(factory=dict)
    images: dict[str, str] = attrs.field(factory=dict)
    tls_sans: tuple[str, ...] = ()
    server: str | None = None
    """The KITT server an agent enrolls with, when kitt-web is not in the stack."""
    pin: str | None = None
    models: str | None = None
    gpus: bool = False
    engines: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()


def _check(options: StackOptions) -> None:
    if not set(options.monitoring) <= set(MONITORING_SERVICES) or \
            (options.monitoring and "prometheus" not in options.monitoring):
        raise kitt.BadInput(f"monitoring services {options.monitoring} are not a choice",
                            hint="--monitoring, with --no-grafana or --no-influxdb")
    if options.postgres and not options.web:
        raise kitt.BadInput("--postgres is kitt-web's store: it needs --web",
                            hint="add --web, or drop --postgres")
    if not (options.web or options.agent or options.monitoring):
        raise kitt.BadInput("the stack has no service",
                            hint="give --web, --agent or --monitoring")
    if options.agent and not options.web:
        if not options.server or not options.pin:
            raise kitt.BadInput("an agent without kitt-web in the stack needs its server",
                                hint="give --server https://HOST:PORT and --pin sha256//... "
                                     "(both printed by the server's `kitt web` start), and "
                                     "KITT_ENROLL_TOKEN in the environment")
        if not os.environ.get("KITT_ENROLL_TOKEN"):
            raise kitt.BadInput("KITT_ENROLL_TOKEN is not set",
                                hint="create an enrollment token on the server (kitt web "
                                     "enroll NAME) and export it as KITT_ENROLL_TOKEN")
    if options.agent and options.server and options.web:
        raise kitt.BadInput("--server is for an agent of another server",
                            hint="drop --server: the stack's agent enrolls with its kitt-web")
    if options.agent:
        models = Path(options.models or "")
        if not options.models or not models.is_absolute() or not models.is_dir():
            raise kitt.BadInput(f"--models {options.models or '(missing)'} is not a folder "
                                "given by its absolute path",
                                hint="give the host folder the agent keeps models in, e.g. "
                                     "--models /srv/models")
    unknown = set(options.images) - set(services.DEFAULT_IMAGES)
    if unknown:
        raise kitt.BadInput(f"--image {sorted(unknown)[0]}=...: no such image",
                            hint=f"name one of {', '.join(services.DEFAULT_IMAGES)}")
    unknown = set(options.ports) - set(services.DEFAULT_PORTS)
    if unknown:
        raise kitt.BadInput(f"--port {sorted(unknown)[0]}=...: no such service",
                            hint=f"name one of {', '.join(services.DEFAULT_PORTS)}")


def stack_services(options: StackOptions) -> list[str]:
    names = []
    if options.web:
        names.append("kitt-web")
    if options.postgres:
        names.append("postgres")
    if options.agent:
        names.append("agent")
    names.extend(s for s in MONITORING_SERVICES if s in options.monitoring)
    return names


def published_ports(names: list[str], ports: dict[str, int]) -> dict[str, int]:
    return {name: ports.get(name, services.DEFAULT_PORTS[name])
            for name in names if name in services.DEFAULT_PORTS}


def generate_stack(name: str, options: StackOptions) -> Path:
    """Write (or rewrite, keeping secrets, TLS and the scrape token) the stack's folder."""
    _check(options)
    folder = folder_of("stack", name)
    names = stack_services(options)
    old_env = read_env(folder / ".env")
    files: dict[str, str | bytes] = {}
    env: dict[str, str] = {}
    comments: dict[str, str] = {}

    def secret(key: str, comment: str, make=new_secret) -> None:
        env[key] = old_env.get(key) or make()
        comments[key] = comment

    images = {**services.DEFAULT_IMAGES, **options.images}
    used_images = {"kitt"} if options.web or options.agent else set()
    used_images |= {n for n in ("postgres", *MONITORING_SERVICES) if n in names}
    for image in sorted(used_images):
        env[services.IMAGE_VARIABLES[image]] = images[image]
    for service, port in published_ports(names, options.ports).items():
        env[services.PORT_VARIABLES[service]] = str(port)
    definitions: dict[str, dict[str, Any]] = {}
    pin = options.pin
    if options.web:
        secret("KITT_AUTH_TOKEN", "kitt-web's admin token (log in with it; make others)",
               lambda: "kitt_" + new_secret())
        tls = _tls_files(folder / "tls", ("kitt-web", *options.tls_sans))
        files |= {f"tls/{n}": data for n, data in tls.items()}
        pin = "sha256//" + _spki(tls["server.pem"])
        definitions["kitt-web"] = services.kitt_web(
            postgres=options.postgres, influx="influxdb" in options.monitoring)
    if options.postgres:
        secret("POSTGRES_PASSWORD", "kitt-web's PostgreSQL role `kitt`")
        definitions["postgres"] = services.postgres()
    if options.agent:
        env |= {"KITT_SERVER": options.server or
                f"https://kitt-web:{services.WEB_PORT_INSIDE}",
                "KITT_SERVER_PIN": pin or "", "KITT_AGENT_NAME": f"{name}-agent",
                "KITT_MODELS": str(options.models),
                "DOCKER_SOCKET": kitt.docker_socket()}
        # An outside server's token comes from the environment now; the stack's own
        # kitt-web makes one at the first `kitt stack start`.
        env["KITT_ENROLL_TOKEN"] = old_env.get("KITT_ENROLL_TOKEN") or \
            (os.environ.get("KITT_ENROLL_TOKEN", "") if not options.web else "")
        comments["KITT_ENROLL_TOKEN"] = "the agent's one-use enrollment token"
        definitions["agent"] = services.agent(web_in_stack=options.web, gpus=options.gpus)
    if "grafana" in options.monitoring:
        secret("GRAFANA_ADMIN_PASSWORD", "Grafana's `admin` user")
        definitions["grafana"] = services.grafana()
    if "influxdb" in options.monitoring:
        secret("INFLUXDB_ADMIN_PASSWORD", "InfluxDB's `admin` user")
        secret("INFLUXDB_WRITE_PASSWORD", "InfluxDB's `kitt` user (writes: kitt-web)")
        secret("INFLUXDB_READ_PASSWORD", "InfluxDB's `grafana` user (reads)")
        definitions["influxdb"] = services.influxdb()
    if options.monitoring:
        definitions["prometheus"] = services.prometheus()
        scrapes = monitoring.Scrapes(
            kitt_web=f"kitt-web:{services.WEB_PORT_INSIDE}" if options.web else None,
            kitt_web_server_name="kitt-web", engines=options.engines, nodes=options.nodes)
        files["prometheus/prometheus.yml"] = monitoring.prometheus_config(scrapes)
        if options.web:
            files["prometheus/kitt-ca.pem"] = files["tls/ca.pem"]
            token = folder / SCRAPE_TOKEN
            files[SCRAPE_TOKEN] = token.read_text() if token.is_file() else ""
        # Written without Grafana too: for a Grafana of one's own to provision from.
        files |= monitoring.grafana_files(influx="influxdb" in options.monitoring)
    files |= _compose_env_registry("stack", name, definitions, env, comments, names, {
        "web": options.web, "postgres": options.postgres, "agent": options.agent,
        "monitoring": list(options.monitoring), "gpus": options.gpus, "server": options.server,
        "tls_sans": list(options.tls_sans), "engines": list(options.engines),
        "nodes": list(options.nodes)}, published_ports(names, options.ports))
    write_folder(folder, files, private=PRIVATE)
    return folder


def generate_monitoring(name: str, *, nodes: tuple[str, ...], engines: tuple[str, ...],
                        kitt_web: str | None, kitt_web_ca: str | None,
                        ports: dict[str, int], images: dict[str, str], grafana: bool = True
                        ) -> Path:
    """Prometheus (scraping `nodes`, `engines` and a kitt-web), Grafana and InfluxDB."""
    folder = folder_of("monitoring", name)
    if not (nodes or engines or kitt_web):
        raise kitt.BadInput("nothing to scrape", hint="give -t HOST:PORT (repeatable), "
                                                      "--engine HOST:PORT or --kitt-web "
                                                      "HOST:PORT")
    unknown = (set(ports) - set(MONITORING_SERVICES)) | (set(images) - set(MONITORING_SERVICES))
    if unknown:
        raise kitt.BadInput(f"{sorted(unknown)[0]}: not a monitoring service",
                            hint=f"name one of {', '.join(MONITORING_SERVICES)}")
    files: dict[str, str | bytes] = {}
    if kitt_web:
        ca = Path(kitt_web_ca or "")
        if not kitt_web_ca or not ca.is_file():
            raise kitt.BadInput("--kitt-web needs the server's CA",
                                hint="give --kitt-web-ca FILE (its KITT_HOME/web/tls/ca.pem)")
        files["prometheus/kitt-ca.pem"] = ca.read_bytes()
        token = os.environ.get("KITT_METRICS_TOKEN")
        old = folder / SCRAPE_TOKEN
        if not token and not old.is_file():
            raise kitt.BadInput("KITT_METRICS_TOKEN is not set",
                                hint="create a viewer token (kitt web token create prometheus "
                                     "--role viewer) and export it as KITT_METRICS_TOKEN")
        files[SCRAPE_TOKEN] = token or old.read_text()
    names = [s for s in MONITORING_SERVICES if grafana or s != "grafana"]
    old_env = read_env(folder / ".env")
    env = {services.IMAGE_VARIABLES[s]: images.get(s, services.DEFAULT_IMAGES[s])
           for s in names}
    env |= {services.PORT_VARIABLES[s]: str(p) for s, p in published_ports(names, ports).items()}
    wanted = [("INFLUXDB_ADMIN_PASSWORD", "InfluxDB's `admin` user"),
              ("INFLUXDB_WRITE_PASSWORD", "InfluxDB's `kitt` user (writes)"),
              ("INFLUXDB_READ_PASSWORD", "InfluxDB's `grafana` user (reads)")]
    if grafana:
        wanted.insert(0, ("GRAFANA_ADMIN_PASSWORD", "Grafana's `admin` user"))
    comments = {}
    for key, comment in wanted:
        env[key] = old_env.get(key) or new_secret()
        comments[key] = comment
    files["prometheus/prometheus.yml"] = monitoring.prometheus_config(monitoring.Scrapes(
        kitt_web=kitt_web, engines=engines, nodes=nodes))
    files |= monitoring.grafana_files(influx=True)
    definitions = {"prometheus": services.prometheus(), "influxdb": services.influxdb()}
    if grafana:
        definitions["grafana"] = services.grafana()
    files |= _compose_env_registry("monitoring", name, definitions, env, comments, names, {
        "nodes": list(nodes), "engines": list(engines), "kitt_web": kitt_web},
        published_ports(names, ports))
    write_folder(folder, files, private=PRIVATE)
    return folder


def _compose_env_registry(kind: str, name: str, definitions: dict[str, Any],
                          env: dict[str, str], comments: dict[str, str], names: list[str],
                          settings: dict[str, Any], ports: dict[str, int]) -> dict[str, str]:
    """The three files every deployment has: the Compose file, .env, the registry entry."""
    doc = {"stack": "deployment.md", "monitoring": "monitoring.md"}[kind]
    return {
        "docker-compose.yaml": f"# KITT {kind} {name!r}, generated by `kitt {kind} generate` "
                               f"(docs/{doc}).\n# Images, ports and secrets are set in .env.\n"
                               + dump_yaml(services.compose_file(definitions)),
        ".env": render_env(env, comments),
        REGISTRY_FILE: "# KITT's record of this deployment (no secrets: those are in .env).\n"
                       + dump_yaml({"kind": kind, "name": name,
                                    "generated_at": datetime.now(timezone.utc).isoformat(
                                        timespec="seconds"),
                                    "kitt": kitt.__version__, "services": names,
                                    "ports": ports, "settings": settings}),
    }


def _tls_files(existing: Path, sans: tuple[str, ...]) -> dict[str, bytes]:
    """The stack's CA and server certificate: the existing ones, re-issued only if a name
    is new (the key and CA stay: pins and trust hold), else new ones."""
    from kitt_web.tls import ensure_local_tls

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "tls"
        work.mkdir()
        for name in TLS_FILES:
            if (existing / name).is_file():
                shutil.copy2(existing / name, work / name)
        ensure_local_tls(sans, folder=work)
        return {name: (work / name).read_bytes() for name in TLS_FILES}


def _spki(cert_pem: bytes) -> str:
    from kitt_web.tls import spki_sha256

    with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
        handle.write(cert_pem)
        handle.flush()
        return spki_sha256(Path(handle.name))
