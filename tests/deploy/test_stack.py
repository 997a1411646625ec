"""`kitt stack` and `kitt monitoring` on a real dockerd with Debian's compose tool: a stack
of kitt-web, PostgreSQL, Prometheus and InfluxDB (stand-ins for the official images, built
from Debian's packages: tests/support/images.py) generated, started until healthy, fed a
run, scraped, stopped, started again and removed. Grafana cannot run here (no package, no
registry): its files are checked structurally in tests/web/test_deploy_files.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import free_port, run_kitt
from support.engines import docker_client_or_skip
from support.images import build_kitt_image, service_image
from support.monitoring import prometheus_query, wait_for_points, wait_for_series
from support.stores import make_run
from support.web import start_web

import kitt
from kitt_web.deploy.folder import read_env

pytestmark = [pytest.mark.image, pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def client():
    return docker_client_or_skip()


@pytest.fixture(scope="module")
def images(client) -> list[str]:
    found = {"kitt": build_kitt_image(client)}
    found |= {name: service_image(client, name) for name in ("postgres", "prometheus",
                                                               "influxdb")}
    return [arg for name, image in found.items() for arg in ("--image", f"{name}={image}")]


def _only(images: list[str], *services: str) -> list[str]:
    pairs = [images[i:i + 2] for i in range(0, len(images), 2)]
    return [arg for pair in pairs if pair[1].split("=")[0] in services for arg in pair]


def kitt_ok(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    done = run_kitt(*args, env=env, timeout=timeout)
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    return done


def project_objects(client, project: str) -> dict[str, list[str]]:
    from kitt_web.deploy.compose import leftovers

    return leftovers(client, project)


def test_stack_generate_start_feed_scrape_stop_remove(client, images, kitt_env, tmp_path):
    ports = {"kitt-web": free_port(), "prometheus": free_port(), "influxdb": free_port()}
    generate = ("stack", "generate", "lab", "--postgres", "--monitoring", "--no-grafana",
                "--port", str(ports["kitt-web"]), "--port", f"prometheus={ports['prometheus']}",
                "--port", f"influxdb={ports['influxdb']}", *images)
    kitt_ok(*generate, env=kitt_env)
    folder = Path(kitt_env["KITT_HOME"]) / "stacks" / "lab"
    env = read_env(folder / ".env")
    assert (folder / ".env").stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("KITT_AUTH_TOKEN", "POSTGRES_PASSWORD", "INFLUXDB_WRITE_PASSWORD"):
        assert len(env[name]) >= 43
        for public in ("deployment.yaml", "docker-compose.yaml", "prometheus/prometheus.yml"):
            assert env[name] not in (folder / public).read_text()

    project = "kitt-stack-lab"
    try:
        started = kitt_ok("stack", "start", "lab", "--json", env=kitt_env)
        rows = {row["service"]: row for row in json.loads(started.stdout)["services"]}
        assert set(rows) == {"kitt-web", "postgres", "prometheus", "influxdb"}
        assert all(row["state"] == "running" for row in rows.values())
        assert rows["kitt-web"]["health"] == "healthy" == rows["postgres"]["health"]
        assert "made viewer token" in started.stderr

        # A run submitted to the stack's kitt-web lands in its PostgreSQL...
        store_url = f"sqlite:///{tmp_path / 'local.db'}"
        with kitt.open_store(store_url) as store:
            store.save_run(make_run(1, model="stacked.gguf"))
        submit_env = {**kitt_env, "KITT_SERVER_TOKEN": env["KITT_AUTH_TOKEN"]}
        kitt_ok("results", "submit", "run-00001", "--store", store_url, "--server",
                f"https://127.0.0.1:{ports['kitt-web']}", "--ca-file",
                str(folder / "tls" / "ca.pem"), env=submit_env)
        postgres = client.containers.get(next(c for c in project_objects(
            client, project)["containers"] if "postgres" in c))
        code, out = postgres.exec_run(["psql", "-tA", "-U", "kitt", "-d", "kitt", "-c",
                                       "SELECT model FROM runs WHERE id = 'run-00001'"])
        assert code == 0 and out.decode().strip() == "stacked.gguf", out
        # ...is forwarded to its InfluxDB, and Prometheus scrapes kitt-web's /metrics over
        # TLS with the viewer token `start` made.
        influx = f"http://127.0.0.1:{ports['influxdb']}"
        series = wait_for_points(influx, "SELECT count(value) FROM kitt_metric WHERE "
                                         "run_id = 'run-00001'", "kitt",
                                 auth=("admin", env["INFLUXDB_ADMIN_PASSWORD"]))
        assert series and series[0]["values"][0][1] == 7
        prometheus = f"http://127.0.0.1:{ports['prometheus']}"
        assert wait_for_series(prometheus, 'up{job="kitt-web"} == 1')
        passed = wait_for_series(prometheus, 'kitt_runs{status="passed"}')
        assert passed[0]["value"][1] == "1"
        targets = json.loads(kitt_ok("stack", "targets", "lab", "--json",
                                     env=kitt_env).stdout)["targets"]
        assert [(t["job"], t["health"], t["error"]) for t in targets] == \
            [("kitt-web", "up", None)]

        # Regenerating while it runs keeps every secret and the CA.
        ca = (folder / "tls" / "ca.pem").read_bytes()
        kitt_ok(*generate, env=kitt_env)
        assert read_env(folder / ".env") == env and (folder / "tls/ca.pem").read_bytes() == ca

        status = kitt_ok("stack", "status", "lab", "--json", env=kitt_env)
        assert {r["service"]: r["health"] for r in json.loads(status.stdout)["services"]} \
            == {"kitt-web": "healthy", "postgres": "healthy", "prometheus": "healthy",
                "influxdb": "healthy"}

        # stop: no container or network; the data volumes stay, and a start finds the run.
        stopped = kitt_ok("stack", "stop", "lab", env=kitt_env)
        left = project_objects(client, project)
        assert left["containers"] == [] and left["networks"] == []
        assert {"kitt-stack-lab_postgres-data", "kitt-stack-lab_kitt-data"} <= \
            set(left["volumes"])
        assert "data volumes kept" in stopped.stdout
        kitt_ok("stack", "start", "lab", env=kitt_env)
        with urllib.request.urlopen(urllib.request.Request(
                f"https://127.0.0.1:{ports['kitt-web']}/api/v1/runs/run-00001",
                headers={"Authorization": f"Bearer {env['KITT_AUTH_TOKEN']}"}),
                context=_context(folder)) as answer:
            assert json.load(answer)["model"] == "stacked.gguf"
    finally:
        removed = run_kitt("stack", "remove", "lab", "--delete-files", env=kitt_env,
                           timeout=300)
    assert removed.returncode == 0, removed.stderr
    assert project_objects(client, project) == {"containers": [], "networks": [],
                                                "volumes": []}
    assert not folder.exists()
    assert kitt_ok("stack", "list", "--json", env=kitt_env).stdout.strip() == \
        json.dumps({"stack": []}, indent=2)


def _context(folder: Path):
    import ssl

    return ssl.create_default_context(cafile=str(folder / "tls" / "ca.pem"))


def test_monitoring_scrapes_a_kitt_web_on_the_docker_host(client, images, kitt_env, tmp_path):
    """`kitt monitoring` beside a `kitt web` that runs on the host itself, reached from
    Prometheus's container as host.docker.internal (its certificate names it)."""
    from support.web import seed

    seeded = seed(f"sqlite:///{tmp_path / 'kitt.db'}", runs=2)
    web_port = free_port()
    web_home = tmp_path / "web-home"
    web, _ = start_web("--host", "0.0.0.0", "--port", str(web_port), "--store", seeded.url,
                       "--tls-san", "host.docker.internal", env={"KITT_HOME": str(web_home)},
                       log=tmp_path / "web.log")
    prom_port = free_port()
    monitoring_env = {**kitt_env, "KITT_METRICS_TOKEN": seeded.secrets["viewer"]}
    try:
        kitt_ok("monitoring", "generate", "watch", "--no-grafana", "--kitt-web",
                f"host.docker.internal:{web_port}", "--kitt-web-ca",
                str(web_home / "web/tls/ca.pem"), "--port", f"prometheus={prom_port}",
                "--port", f"influxdb={free_port()}", *_only(images, "prometheus", "influxdb"),
                env=monitoring_env)
        folder = Path(kitt_env["KITT_HOME"]) / "monitoring" / "watch"
        assert seeded.secrets["viewer"] not in (folder / "prometheus/prometheus.yml").read_text()
        kitt_ok("monitoring", "start", "watch", env=kitt_env)
        prometheus = f"http://127.0.0.1:{prom_port}"
        assert wait_for_series(prometheus, 'up{job="kitt-web"} == 1')
        assert prometheus_query(prometheus, 'kitt_runs{status="passed"}')[0]["value"][1] == "2"
    finally:
        removed = run_kitt("monitoring", "remove", "watch", env=kitt_env, timeout=300)
        web.stop()
    assert removed.returncode == 0, removed.stderr
    assert "files kept in" in removed.stdout
    assert project_objects(client, "kitt-monitoring-watch") == {
        "containers": [], "networks": [], "volumes": []}
    listed = kitt_ok("monitoring", "list", "--json", env=kitt_env)
    assert json.loads(listed.stdout) == {"monitoring": []}


def test_start_refuses_a_busy_port_and_leaves_nothing_running(client, images, kitt_env):
    import socket

    port = free_port()
    kitt_ok("stack", "generate", "busy", "--port", str(port), *_only(images, "kitt"),
            env=kitt_env)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", port))
        holder.listen()
        done = run_kitt("stack", "start", "busy", env=kitt_env)
    assert done.returncode == 2, done.stderr
    assert f"port {port} for kitt-web is in use" in done.stderr and "--port" in done.stderr
    assert project_objects(client, "kitt-stack-busy")["containers"] == []
    kitt_ok("stack", "remove", "busy", "--delete-files", env=kitt_env)


def test_a_missing_daemon_or_compose_tool_is_named(kitt_env, tmp_path):
    kitt_ok("stack", "generate", "solo", "--port", str(free_port()), env=kitt_env)
    no_daemon = run_kitt("stack", "start", "solo",
                         env={**kitt_env, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert no_daemon.returncode == 2 and "Docker is not reachable" in no_daemon.stderr
    bare = tmp_path / "bin"
    bare.mkdir()
    no_tool = run_kitt("stack", "start", "solo",
                       env={**kitt_env, "PATH": f"{bare}:{Path(sys.executable).parent}"})
    assert no_tool.returncode == 2 and "no compose tool" in no_tool.stderr
    assert "docker-compose-plugin" in no_tool.stderr


def test_a_stacks_agent_enrolls_with_its_kitt_web_and_heartbeats(client, images, kitt_env,
                                                                 tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    port = free_port()
    kitt_ok("stack", "generate", "fleet", "--agent", "--models", str(models), "--no-gpus",
            "--port", str(port), *_only(images, "kitt"), env=kitt_env)
    folder = Path(kitt_env["KITT_HOME"]) / "stacks" / "fleet"
    assert read_env(folder / ".env")["KITT_ENROLL_TOKEN"] == ""  # made by the first start
    try:
        started = kitt_ok("stack", "start", "fleet", env=kitt_env)
        assert "made enrollment" in started.stderr
        env = read_env(folder / ".env")
        request = urllib.request.Request(f"https://127.0.0.1:{port}/api/v1/agents",
                                         headers={"Authorization":
                                                  f"Bearer {env['KITT_AUTH_TOKEN']}"})
        deadline = time.monotonic() + 120
        while True:  # the agent enrolls, then heartbeats: the server's list is the event
            with urllib.request.urlopen(request, context=_context(folder)) as answer:
                agents = json.load(answer)["agents"]
            if agents and agents[0]["status"] == "online":
                break
            assert time.monotonic() < deadline, (agents, client.containers.get(
                next(c for c in project_objects(client, "kitt-stack-fleet")["containers"]
                     if "agent" in c)).logs()[-3000:])
            time.sleep(1)
        assert agents[0]["name"] == "fleet-agent"
        assert agents[0]["inventory"]["storage"]["dir"] == "/models"
    finally:
        removed = run_kitt("stack", "remove", "fleet", "--delete-files", env=kitt_env,
                           timeout=300)
    assert removed.returncode == 0, removed.stderr
    assert project_objects(client, "kitt-stack-fleet") == {"containers": [], "networks": [],
                                                           "volumes": []}


def test_a_crash_looping_service_fails_the_start_at_once_and_nothing_stays(client, kitt_env):
    """kitt-web from an image whose program refuses kitt's arguments (Prometheus's) exits
    at once and keeps being restarted (`restart: unless-stopped`): start fails naming it,
    shows its log, and takes the stack down, well before the health timeout."""
    kitt_ok("stack", "generate", "loop", "--port", str(free_port()), "--image",
            f"kitt={service_image(client, 'prometheus')}", env=kitt_env)
    started = time.monotonic()
    done = run_kitt("stack", "start", "loop", env=kitt_env, timeout=600)
    assert done.returncode == 1, done.stderr
    assert "kitt-web did not become healthy" in done.stderr
    assert "the services' last lines" in done.stderr and "taking it down again" in done.stderr
    assert time.monotonic() - started < 120
    assert project_objects(client, "kitt-stack-loop")["containers"] == []
    kitt_ok("stack", "remove", "loop", "--delete-files", env=kitt_env)
