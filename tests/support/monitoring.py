"""Debian's Prometheus and InfluxDB, started for a test from a private config and data
folder on loopback ports (CI installs the packages; .ci/run), stopped afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import free_port, require


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)  # nothing to wait on but the port itself
    raise AssertionError(f"{url} never answered: {log.read_text()[-2000:]}")


@contextmanager
def _running(argv: list[str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
    try:
        _wait_ready(ready_url, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def influxdb(folder: Path) -> Iterator[str]:
    """A fresh InfluxDB 1.x; its base URL."""
    binary = shutil.which("influxd")
    require("influxdb", binary is not None, "influxd not found (Debian package influxdb)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "influxdb.conf"
    config.write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{folder / 'meta'}"
[data]
  dir = "{folder / 'data'}"
  wal-dir = "{folder / 'wal'}"
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
""")
    url = f"http://127.0.0.1:{port}"
    with _running([binary, "-config", str(config)], f"{url}/ping", folder / "influxd.log"):
        yield url


def influx_query(url: str, query: str, database: str | None = None,
                 auth: tuple[str, str] | None = None) -> list[dict]:
    """The series a query returns (InfluxQL over the 1.x /query API)."""
    params = {"q": query, **({"db": database} if database else {})}
    headers = {}
    if auth:
        import base64

        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    request = urllib.request.Request(f"{url}/query", method="POST", headers=headers,
                                     data=urllib.parse.urlencode(params).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        doc = json.load(response)
    result = doc["results"][0]
    assert "error" not in result, result
    return result.get("series", [])


@contextmanager
def prometheus(folder: Path, scrape: str) -> Iterator[str]:
    """Prometheus scraping what `scrape` (YAML of scrape_configs entries) says; its URL."""
    binary = shutil.which("prometheus")
    require("prometheus", binary is not None, "prometheus not found (Debian package)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                      "scrape_configs:\n" + scrape)
    url = f"http://127.0.0.1:{port}"
    with _running([binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}"], f"{url}/-/ready",
                  folder / "prometheus.log"):
        yield url


def prometheus_query(url: str, query: str) -> list[dict]:
    params = urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=30) as response:
        doc = json.load(response)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def wait_for_series(url: str, query: str, timeout: float = 60) -> list[dict]:
    """The query's result once it has one: Prometheus scrapes on its own clock, and its
    API is the only way to see that a scrape happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = prometheus_query(url, query)
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"Prometheus at {url} has no {query!r} after {timeout}s")


def wait_for_points(url: str, query: str, database: str, auth: tuple[str, str] | None = None,
                    timeout: float = 60) -> list[dict]:
    """The query's series once it has some: points arrive after the write that sends them
    returns (kitt-web forwards runs in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = influx_query(url, query, database, auth)
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"InfluxDB at {url} has nothing for {query!r} after {timeout}s")
