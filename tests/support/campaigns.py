"""Helpers for campaign tests: a tiny model, the `hello` benchmark plugin, a campaign
file writer, a webhook receiver and the state file reader."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support import run_kitt, start_kitt

SUITE = """\
name: hello-suite
warmup: {requests: 2, max_tokens: 4}
benchmarks: [hello]
"""


def write_campaign(work: dict, text: str, name: str = "campaign.yaml") -> Path:
    path = work["dir"] / name
    path.write_text(text)
    return path


def kitt(work: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_kitt(*args, env=work["env"], site=work["site"], timeout=timeout)


def start(work: dict, *args: str) -> subprocess.Popen:
    return start_kitt(*args, env=work["env"], site=work["site"])


def state(work: dict, name: str) -> dict:
    return json.loads((work["home"] / "campaigns" / name / "state.json").read_text())


def entries(work: dict, name: str) -> dict[str, dict]:
    return {e["id"]: e for e in state(work, name)["entries"]}


class Webhook:
    """A local HTTP server recording every JSON body POSTed to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [body["event"] for body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
