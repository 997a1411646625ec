"""What `kitt stack generate` and `kitt monitoring generate` write, without starting it:
Compose files valid against the Compose Specification, secrets only in `.env`, bad input
refused before anything is written, and Grafana's dashboards (Grafana cannot run here)
checked structurally: every panel queries a series KITT really exports. Starting stacks
on a real dockerd is tests/deploy/test_stack.py."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML
from support import free_port, run_kitt
from support.stores import make_run
from support.web import web_client

from kitt._storage.influx import influx_lines
from kitt_web.deploy import dashboards
from kitt_web.deploy.folder import read_env

COMPOSE_SPEC = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")
STACKS = [
    ("web",),
    ("--postgres",),
    ("--postgres", "--monitoring"),
    ("--monitoring", "--no-grafana", "-t", "host.docker.internal:9100", "--engine",
     "gpu-1.lab:8000"),
    ("--agent", "--models", "{models}", "--no-gpus"),
    ("--agent", "--models", "{models}", "--gpus", "--postgres", "--monitoring"),
]


def generate(kitt_env, name: str, *args: str, models: Path | None = None):
    args = tuple(a.replace("{models}", str(models)) for a in args if a != "web")
    return run_kitt("stack", "generate", name, "--port", str(free_port()), "--port",
                    f"prometheus={free_port()}", "--port", f"grafana={free_port()}",
                    "--port", f"influxdb={free_port()}", *args, env=kitt_env)


def load(path: Path):
    return YAML(typ="safe").load(path.read_text())


@pytest.mark.parametrize("args", STACKS, ids=lambda a: " ".join(a))
def test_every_stack_is_a_valid_compose_file_with_secrets_only_in_env(kitt_env, tmp_path,
                                                                      args):
    done = generate(kitt_env, "lab", *args, models=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = Path(kitt_env["KITT_HOME"]) / "stacks" / "lab"
    compose = load(folder / "docker-compose.yaml")
    if COMPOSE_SPEC.is_file():  # the schema Debian's docker-compose validates with
        import jsonschema

        jsonschema.Draft7Validator(json.loads(COMPOSE_SPEC.read_text())).validate(compose)
    env = read_env(folder / ".env")
    # Every ${VARIABLE} the Compose file uses is set in .env, and no secret is elsewhere.
    used = set(re.findall(r"\$\{([A-Z_]+)\}", (folder / "docker-compose.yaml").read_text()))
    assert used <= set(env), used - set(env)
    secrets = [v for k, v in env.items() if k.endswith(("PASSWORD", "TOKEN")) and v]
    assert secrets
    for path in folder.rglob("*"):
        if path.is_file() and path.name != ".env":
            text = path.read_bytes().decode(errors="replace")
            assert not any(secret in text for secret in secrets), path
    assert (folder / ".env").stat().st_mode & 0o777 == 0o600
    for key in ("tls/ca-key.pem", "tls/server-key.pem"):
        if (folder / key).exists():
            assert (folder / key).stat().st_mode & 0o777 == 0o600
    services = compose["services"]
    # Only kitt-web (TLS, tokens) is published beyond loopback.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert name == "kitt-web" or port.startswith("127.0.0.1:"), (name, port)
    if "agent" in services:
        gpus = "--gpus" in args
        assert ("deploy" in services["agent"]) == gpus
        assert env["KITT_SERVER_PIN"].startswith("sha256//")
        assert env["KITT_MODELS"] == str(tmp_path)


def test_regenerating_keeps_secrets_and_the_ca_and_a_failed_one_changes_nothing(kitt_env):
    assert generate(kitt_env, "keep", "--postgres", "--monitoring").returncode == 0
    folder = Path(kitt_env["KITT_HOME"]) / "stacks" / "keep"
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = run_kitt("stack", "generate", "keep", "--postgres", "--monitoring", "--port",
                     "8999", env=kitt_env)
    assert again.returncode == 0, again.stderr
    env = read_env(folder / ".env")
    assert {k: v for k, v in env.items() if "PORT" not in k} == {
        k: v for k, v in read_env_bytes(before[Path(".env")]).items() if "PORT" not in k}
    assert env["KITT_WEB_PORT"] == "8999"
    assert (folder / "tls/ca.pem").read_bytes() == before[Path("tls/ca.pem")]
    assert (folder / "tls/server-key.pem").read_bytes() == before[Path("tls/server-key.pem")]
    snapshot = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    failed = run_kitt("stack", "generate", "keep", "--image", "nginx=nginx", env=kitt_env)
    assert failed.returncode == 2 and "no such image" in failed.stderr
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()} == snapshot
    assert not list(folder.parent.glob(".keep.*"))  # no staging folder left behind


def read_env_bytes(data: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in data.decode().splitlines()
                if "=" in line and not line.startswith("#"))


@pytest.mark.parametrize(("args", "message", "fix"), [
    (("../up",), "is not a plain name", "lower-case letters"),
    (("Lab One",), "is not a plain name", "lower-case letters"),
    (("lab", "--port", "web=80"), "no such service", "kitt-web"),
    (("lab", "--port", "99999"), "is not a port", "1 to 65535"),
    (("lab", "--image", "postgres="), "not an image reference", "postgres:16"),
    (("lab", "--no-web"), "no service", "--web"),
    (("lab", "--no-web", "--postgres"), "needs --web", "add --web"),
    (("lab", "--agent"), "is not a folder", "--models /srv/models"),
    (("lab", "--agent", "--models", "/x", "--server", "https://k:8080", "--no-web"),
     "needs its server", "--pin"),
    (("lab", "--no-grafana"), "go with --monitoring", "add --monitoring"),
    (("lab", "--monitoring", "-t", "host:9100; rm -rf /"), "is not HOST:PORT", "gpu-1.lab"),
    (("lab", "--tls-san", "bad name!"), "bad --tls-san", "a DNS name"),
])
def test_bad_input_is_refused_and_nothing_is_written(kitt_env, args, message, fix):
    done = run_kitt("stack", "generate", *args, env=kitt_env)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and fix in done.stderr, done.stderr
    assert not (Path(kitt_env["KITT_HOME"]) / "stacks").exists() or \
        not any((Path(kitt_env["KITT_HOME"]) / "stacks").iterdir())


def test_a_port_in_use_is_refused_at_generate(kitt_env):
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run_kitt("stack", "generate", "lab", "--port", str(port), env=kitt_env)
    assert done.returncode == 2 and f"port {port} for kitt-web is in use" in done.stderr
    assert not (Path(kitt_env["KITT_HOME"]) / "stacks" / "lab").exists()


def test_unknown_deployments_name_the_fix(kitt_env):
    for command in (("stack", "start", "nope"), ("stack", "status", "nope"),
                    ("monitoring", "remove", "nope")):
        done = run_kitt(*command, env=kitt_env)
        assert done.returncode == 2 and "no " in done.stderr and "list" in done.stderr


def test_monitoring_needs_something_to_scrape_and_a_token_for_kitt_web(kitt_env, tmp_path):
    empty = run_kitt("monitoring", "generate", "mon", env=kitt_env)
    assert empty.returncode == 2 and "nothing to scrape" in empty.stderr
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    no_token = run_kitt("monitoring", "generate", "mon", "--kitt-web", "kitt.lab:8080",
                        "--kitt-web-ca", str(ca), env=kitt_env)
    assert no_token.returncode == 2 and "KITT_METRICS_TOKEN" in no_token.stderr
    done = run_kitt("monitoring", "generate", "mon", "--kitt-web", "kitt.lab:8080",
                    "--kitt-web-ca", str(ca), "-t", "[::1]:9100",
                    env={**kitt_env, "KITT_METRICS_TOKEN": "kitt_" + "t" * 43})
    assert done.returncode == 0, done.stderr
    folder = Path(kitt_env["KITT_HOME"]) / "monitoring" / "mon"
    config = load(folder / "prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["kitt-web"]["static_configs"][0]["targets"] == ["kitt.lab:8080"]
    assert jobs["kitt-web"]["authorization"]["credentials_file"] == \
        "/etc/prometheus/kitt-token"
    assert jobs["nodes"]["static_configs"][0]["targets"] == ["[::1]:9100"]
    assert (folder / "prometheus/kitt-token").read_text() == "kitt_" + "t" * 43
    assert "kitt_" + "t" * 43 not in (folder / "prometheus/prometheus.yml").read_text()


# -- the dashboards ---------------------------------------------------------------------------

async def exported_prometheus_names(seeded) -> set[str]:
    """Every sample name kitt-web's /metrics has (after one request, so the histogram's
    series exist)."""
    async with web_client(seeded.url, metrics_cache_s=0) as client:
        auth = seeded.auth("viewer")
        await client.get("/api/v1/runs", headers=auth)
        text = await (await client.get("/metrics", headers=auth)).text()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


async def test_every_fleet_panel_queries_a_series_kitt_web_exports(seeded):
    exported = await exported_prometheus_names(seeded)
    panels = dashboards.fleet("kitt-prometheus")["panels"]
    assert panels
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "kitt-prometheus"}
        for target in panel["targets"]:
            series = set(re.findall(r"\bkitt_[a-z_]+", target["expr"]))
            assert series and series <= exported, (panel["title"], series - exported)


def test_every_history_panel_queries_points_kitt_writes():
    lines = list(influx_lines(make_run(1, params={"concurrency": 2})))
    keys: dict[str, set[str]] = {}
    for line in lines:
        head, fields, _ = line.rsplit(" ", 2)
        measurement, *tags = head.split(",")
        keys.setdefault(measurement, set()).update(t.split("=")[0] for t in tags)
        keys[measurement].update(f.split("=")[0] for f in fields.split(","))
    board = dashboards.history("kitt-influxdb")
    queries = [t["query"] for p in board["panels"] for t in p["targets"]]
    queries += [v["query"] for v in board["templating"]["list"]]
    for query in queries:
        measurement = re.search(r'FROM "([a-z_]+)"', query)[1]
        assert measurement in keys, query
        quoted = set(re.findall(r'"([a-z_]+)"', query)) - {measurement}
        assert quoted <= keys[measurement], (query, quoted - keys[measurement])
    variables = {v["name"] for v in board["templating"]["list"]}
    used = {name for q in queries for name in re.findall(r"\$([a-z]+)\$", q)}
    assert used <= variables


def test_grafana_provisioning_names_the_dashboards_datasources(kitt_env):
    assert generate(kitt_env, "graf", "--monitoring").returncode == 0
    folder = Path(kitt_env["KITT_HOME"]) / "stacks" / "graf" / "grafana"
    sources = load(folder / "provisioning/datasources/kitt.yaml")["datasources"]
    uids = {s["uid"]: s for s in sources}
    assert uids["kitt-influxdb"]["secureJsonData"]["password"] == "$INFLUXDB_READ_PASSWORD"
    provider = load(folder / "provisioning/dashboards/kitt.yaml")["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    boards = sorted((folder / "dashboards").glob("*.json"))
    assert [b.name for b in boards] == ["kitt-fleet.json", "kitt-history.json"]
    for board in boards:
        doc = json.loads(board.read_text())
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids))
        for panel in doc["panels"]:
            assert panel["datasource"]["uid"] in uids
            assert all(t["datasource"]["uid"] in uids for t in panel["targets"])


def test_targets_name_an_unreachable_or_missing_prometheus(kitt_env):
    assert generate(kitt_env, "mon", "--monitoring").returncode == 0
    down = run_kitt("stack", "targets", "mon", env=kitt_env)  # generated, not started
    assert down.returncode == 2 and "cannot reach Prometheus at http://127.0.0.1:" in \
        down.stderr and "kitt monitoring start" in down.stderr
    bad = run_kitt("stack", "targets", "mon", "--prometheus", "127.0.0.1:9090", env=kitt_env)
    assert bad.returncode == 2 and "is not a Prometheus URL" in bad.stderr
    assert generate(kitt_env, "plain").returncode == 0
    none = run_kitt("stack", "targets", "plain", env=kitt_env)
    assert none.returncode == 2 and "has no Prometheus" in none.stderr
