"""The Compose services KITT's deployments are made of, as plain data.

Images, ports and secrets are `${VARIABLES}` that `.env` sets, so a person changes an image
or a port in one visible place; secrets never appear in the Compose file itself. Only
kitt-web (TLS and tokens) listens beyond loopback by default; Prometheus, Grafana and
InfluxDB publish on 127.0.0.1 (reach them through SSH or a TLS proxy: docs/deployment.md).
"""

from __future__ import annotations

from typing import Any

# The images a real user pulls; `--image SERVICE=IMAGE` (or .env) points elsewhere.
DEFAULT_IMAGES = {
    "kitt": "kitt:latest",
    "postgres": "postgres:16",
    "prometheus": "prom/prometheus:v2.53.0",
    "grafana": "grafana/grafana:11.1.0",
    "influxdb": "influxdb:1.8",
}
DEFAULT_PORTS = {"kitt-web": 8080, "prometheus": 9090, "grafana": 3000, "influxdb": 8086}
PORT_VARIABLES = {"kitt-web": "KITT_WEB_PORT", "prometheus": "PROMETHEUS_PORT",
                  "grafana": "GRAFANA_PORT", "influxdb": "INFLUXDB_PORT"}
IMAGE_VARIABLES = {"kitt": "KITT_IMAGE", "postgres": "POSTGRES_IMAGE",
                   "prometheus": "PROMETHEUS_IMAGE", "grafana": "GRAFANA_IMAGE",
                   "influxdb": "INFLUXDB_IMAGE"}
LOOPBACK_ONLY = frozenset({"prometheus", "grafana", "influxdb"})
INFLUX_DATABASE = "kitt"
WEB_PORT_INSIDE = 8080


def _health(test: list[str], *, start: str = "20s") -> dict[str, Any]:
    return {"test": ["CMD", *test], "interval": "5s", "timeout": "5s", "retries": 30,
            "start_period": start}


def _published(service: str, inside: int) -> str:
    host = "127.0.0.1:" if service in LOOPBACK_ONLY else ""
    return f"{host}${{{PORT_VARIABLES[service]}}}:{inside}"


def kitt_web(*, postgres: bool, influx: bool) -> dict[str, Any]:
    command = ["web", "--host", "0.0.0.0", "--port", str(WEB_PORT_INSIDE),
               "--tls-cert", "/tls/server.pem", "--tls-key", "/tls/server-key.pem"]
    environment = {"KITT_AUTH_TOKEN": "${KITT_AUTH_TOKEN}"}
    if postgres:
        environment["KITT_STORE"] = "postgresql://kitt:${POSTGRES_PASSWORD}@postgres:5432/kitt"
    if influx:
        command += ["--influx", f"http://influxdb:8086/{INFLUX_DATABASE}"]
        environment |= {"KITT_INFLUX_USER": "kitt",
                        "KITT_INFLUX_PASSWORD": "${INFLUXDB_WRITE_PASSWORD}"}
    service: dict[str, Any] = {
        "image": "${KITT_IMAGE}",
        "command": command,
        "environment": environment,
        "volumes": ["kitt-data:/app/kitt-results", "./tls:/tls:ro"],
        "ports": [_published("kitt-web", WEB_PORT_INSIDE)],
        # The health endpoint over the server's own TLS, checked against the stack's CA.
        "healthcheck": _health(["python3", "-c", (
            "import ssl, urllib.request; urllib.request.urlopen("
            f"'https://localhost:{WEB_PORT_INSIDE}/api/v1/health', timeout=4, context="
            "ssl.create_default_context(cafile='/tls/ca.pem'))")]),
        "restart": "unless-stopped",
    }
    dependencies = {name: {"condition": "service_healthy"}
                    for name, wanted in (("postgres", postgres), ("influxdb", influx)) if wanted}
    if dependencies:
        service["depends_on"] = dependencies
    return service


def postgres() -> dict[str, Any]:
    return {
        "image": "${POSTGRES_IMAGE}",
        "environment": {"POSTGRES_USER": "kitt", "POSTGRES_DB": "kitt",
                        "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD}"},
        "volumes": ["postgres-data:/var/lib/postgresql/data"],
        "healthcheck": _health(["pg_isready", "-U", "kitt", "-d", "kitt"]),
        "restart": "unless-stopped",
    }


def agent(*, web_in_stack: bool, gpus: bool) -> dict[str, Any]:
    # Enrolls once (the agent's home is a volume), then runs; `$$` is a literal `$` for
    # the shell, past Compose's own interpolation.
    script = ('test -f /agent/agent.yaml || kitt-entrypoint kitt-agent init --server '
              '"$$KITT_SERVER" --pin "$$KITT_SERVER_PIN" --name "$$KITT_AGENT_NAME" '
              '--models /models || exit 3; exec kitt-entrypoint kitt-agent start')
    service: dict[str, Any] = {
        "image": "${KITT_IMAGE}",
        "entrypoint": ["sh", "-c", script],
        "environment": {"KITT_AGENT_HOME": "/agent", "KITT_SERVER": "${KITT_SERVER}",
                        "KITT_SERVER_PIN": "${KITT_SERVER_PIN}",
                        "KITT_AGENT_NAME": "${KITT_AGENT_NAME}",
                        "KITT_ENROLL_TOKEN": "${KITT_ENROLL_TOKEN}"},
        "volumes": ["agent-home:/agent", "agent-results:/app/kitt-results",
                    "${KITT_MODELS}:/models", "${DOCKER_SOCKET}:/var/run/docker.sock"],
        "restart": "on-failure",
    }
    if gpus:
        service["deploy"] = {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}}
    if web_in_stack:
        service["depends_on"] = {"kitt-web": {"condition": "service_healthy"}}
    return service


def prometheus() -> dict[str, Any]:
    return {
        "image": "${PROMETHEUS_IMAGE}",
        "command": ["--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=90d"],
        "volumes": ["./prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"],
        "ports": [_published("prometheus", 9090)],
        # Targets on the Docker host itself (node exporters) as host.docker.internal.
        "extra_hosts": ["host.docker.internal:host-gateway"],
        "healthcheck": _health(["wget", "-q", "--spider", "http://localhost:9090/-/ready"]),
        "restart": "unless-stopped",
    }


def grafana() -> dict[str, Any]:
    return {
        "image": "${GRAFANA_IMAGE}",
        "environment": {"GF_SECURITY_ADMIN_USER": "admin",
                        "GF_SECURITY_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD}",
                        "GF_USERS_ALLOW_SIGN_UP": "false",
                        "GF_AUTH_ANONYMOUS_ENABLED": "false",
                        # Read by the InfluxDB datasource's provisioning ($INFLUXDB_...).
                        "INFLUXDB_READ_PASSWORD": "${INFLUXDB_READ_PASSWORD}"},
        "volumes": ["./grafana/provisioning:/etc/grafana/provisioning:ro",
                    "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
                    "grafana-data:/var/lib/grafana"],
        "ports": [_published("grafana", 3000)],
        "healthcheck": _health(["wget", "-q", "--spider", "http://localhost:3000/api/health"]),
        "restart": "unless-stopped",
    }


def influxdb() -> dict[str, Any]:
    # The influxdb:1.8 image's own initialisation variables: the database, and users that
    # may only write (kitt-web) or only read (Grafana).
    return {
        "image": "${INFLUXDB_IMAGE}",
        "environment": {"INFLUXDB_DB": INFLUX_DATABASE, "INFLUXDB_HTTP_AUTH_ENABLED": "true",
                        "INFLUXDB_REPORTING_DISABLED": "true",
                        "INFLUXDB_ADMIN_USER": "admin",
                        "INFLUXDB_ADMIN_PASSWORD": "${INFLUXDB_ADMIN_PASSWORD}",
                        "INFLUXDB_WRITE_USER": "kitt",
                        "INFLUXDB_WRITE_USER_PASSWORD": "${INFLUXDB_WRITE_PASSWORD}",
                        "INFLUXDB_READ_USER": "grafana",
                        "INFLUXDB_READ_USER_PASSWORD": "${INFLUXDB_READ_PASSWORD}"},
        "volumes": ["influxdb-data:/var/lib/influxdb"],
        "ports": [_published("influxdb", 8086)],
        "healthcheck": _health(["curl", "-sf", "http://localhost:8086/ping"]),
        "restart": "unless-stopped",
    }


def compose_file(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A Compose Specification document (no `version:`: v2 and docker-compose 1.27+ both
    read it; the project name comes from the command line) with its named volumes."""
    volumes = sorted({mount.split(":")[0] for service in services.values()
                      for mount in service.get("volumes", [])
                      if not mount.startswith((".", "/", "$"))})
    doc: dict[str, Any] = {"services": services}
    if volumes:
        doc["volumes"] = {volume: {} for volume in volumes}
    return doc
