"""kitt-web's runs list, runs page and /metrics on a large store: 100,000 runs in SQLite.

    python bench/web.py [--runs 100000] [--requests 50] [--out FILE]

Fills a fresh SQLite store (bench/storage.py's runs: 4 results of 5 metrics each), starts
a real `kitt web --insecure` on it, and requests each view `--requests` times one after
another. Reports server-side latency (the `ms` of each request in kitt-web's access log:
from the request's arrival to its last byte) as p50, p95 and max, and the client's wall
time beside it. Target: p95 under 100 ms for the list endpoint and the runs page.

/metrics reuses a snapshot of the store for 10 s, so its requests mostly measure the
exposition; the snapshot itself (what one scrape in ten seconds costs the store) is timed
in-process, `--requests` times, as `metrics_snapshot`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _output import emit  # bench/ (the script's folder) is on sys.path
from storage import fill

import kitt

VIEWS = {
    "api: newest 50": "/api/v1/runs",
    "api: one model": "/api/v1/runs?model=model-3",
    "api: model, engine and suite": "/api/v1/runs?model=model-3&engine=vllm&suite=full",
    "api: sorted by model": "/api/v1/runs?sort=model",
    "api: page 21 (cursor)": None,  # filled in: the cursor 20 pages deep
    "api: a metric bound": "/api/v1/runs?metric=throughput:throughput_m0:110:",
    "api: a date range": "/api/v1/runs?since=2025-03-01&until=2025-04-01",
    "page: /runs": "/runs",
    "page: /runs one model, by model": "/runs?model=model-3&sort=model",
    "page: /runs a metric bound": "/runs?metric=throughput:throughput_m0:110:",
    "metrics: /metrics (snapshot reused)": "/metrics",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def get(base: str, path: str, token: str) -> tuple[float, bytes]:
    request = urllib.request.Request(base + path,
                                     headers={"Authorization": f"Bearer {token}"})
    start = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        body = response.read()
    return (time.perf_counter() - start) * 1000, body


def time_snapshot(url: str, times: int) -> list[float]:
    """What /metrics asks of the store once per cache period, timed in this process."""
    from types import SimpleNamespace

    from kitt_web.metrics import take_snapshot
    from kitt_web.state import open_state

    with kitt.open_store(url) as store:
        karr = SimpleNamespace(store=store, db=open_state(store))
        spent = []
        for _ in range(times):
            start = time.perf_counter()
            take_snapshot(karr, 180.0, 0.0)
            spent.append((time.perf_counter() - start) * 1000)
    print(f"metrics snapshot: median {statistics.median(spent):.0f} ms", file=sys.stderr)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite://{tmp}/bench.db"
        print(f"filling {args.runs} runs", file=sys.stderr)
        with kitt.open_store(url) as store:
            fill_s = fill(store, args.runs)
        env = {**os.environ, "KITT_HOME": f"{tmp}/home", "KITT_AUTH_TOKEN": ""}
        log = Path(tmp) / "web.log"
        port = 18000 + os.getpid() % 1000
        with log.open("wb") as handle:
            proc = subprocess.Popen([sys.executable, "-m", "kitt", "web", "--insecure",
                                     "--port", str(port), "--store", url], env=env,
                                    stdout=subprocess.DEVNULL, stderr=handle)
        try:
            while "kitt web: ready" not in log.read_text():
                if proc.poll() is not None:
                    sys.exit(log.read_text())
                time.sleep(0.1)
            token = re.search(r"kitt_[A-Za-z0-9_-]{43}", log.read_text())[0]
            base = f"http://127.0.0.1:{port}"
            cursor = None
            for _ in range(20):
                page = json.loads(get(base, "/api/v1/runs" + (f"?cursor={cursor}" if cursor
                                                              else ""), token)[1])
                cursor = page["next_cursor"]
            views = dict(VIEWS, **{"api: page 21 (cursor)": f"/api/v1/runs?cursor={cursor}"})
            results = {}
            for name, path in views.items():
                get(base, path, token)  # warm: a store in use has its pages cached
                mark = len(log.read_text().splitlines())
                client = [get(base, path, token)[0] for _ in range(args.requests)]
                server = [json.loads(line)["ms"] for line in
                          log.read_text().splitlines()[mark:] if line.startswith('{"ts"')]
                results[name] = {
                    "path": path, "server_p50_ms": round(statistics.median(server), 2),
                    "server_p95_ms": round(percentile(server, 0.95), 2),
                    "server_max_ms": round(max(server), 2),
                    "client_p50_ms": round(statistics.median(client), 2),
                    "client_p95_ms": round(percentile(client, 0.95), 2),
                }
                print(f"{name}: p95 {results[name]['server_p95_ms']} ms", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        snapshot_ms = time_snapshot(url, args.requests)
    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform(),
                          "load_average": os.getloadavg()},
              "runs": args.runs, "requests": args.requests, "fill_s": round(fill_s, 1),
              "target_p95_ms": 100, "views": results,
              "metrics_snapshot": {"p50_ms": round(statistics.median(snapshot_ms), 1),
                                   "max_ms": round(max(snapshot_ms), 1)}}
    emit(report, args.out)


if __name__ == "__main__":
    main()
