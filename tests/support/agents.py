"""A fleet on loopback for the agent tests: a real `kitt web` (TLS, its own CA) and real
`kitt-agent` processes, each with its own home and model storage, talking to each other
as they would across a network. The test speaks to the server's API over TLS verified by
the server's CA; the agents pin its key."""

from __future__ import annotations

import json
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from support import free_port, processes_mentioning, subprocess_env, wait_until
from support.web import TOKEN, WebProcess

SERVER_FLAGS = ("--agent-heartbeat", "1", "--agent-lost-after", "20", "--cancel-grace", "60")
LONG = {"benchmark": "throughput", "params": {"requests": 100000, "concurrency": 2,
                                             "max_tokens": 32}}
"""A job that runs until cancelled (minutes on the tiny model)."""
SHORT = {"benchmark": "throughput", "params": {"requests": 8, "concurrency": 2,
                                              "max_tokens": 16, "warmup_requests": 1}}


class AgentProcess:
    def __init__(self, home: Path, log: Path) -> None:
        self.home, self.log = home, log
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        return subprocess_env({"KITT_AGENT_HOME": str(self.home), "KITT_HOME": str(self.home),
                               "KITT_STORE": ""})

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kitt_agent.cli", *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={**self.env(), **(env or {})}, check=False)

    def start(self) -> AgentProcess:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "kitt_agent.cli", "start"],
                                     stdout=handle, stderr=handle, env=self.env(),
                                     start_new_session=True)
        handle.close()
        return self

    @property
    def text(self) -> str:
        return self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""

    def wait_for(self, line: str, timeout: float = 60) -> None:
        wait_until(lambda: line in self.text or (self.proc and self.proc.poll() is not None),
                   timeout, f"the agent to say {line!r}")
        assert line in self.text, f"the agent exited first: {self.text[-3000:]}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"the agent did not stop after {sig}: {self.text[-3000:]}")

    def exited(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def spool(self, job_id: str) -> Path:
        return self.home / "agent" / "jobs" / job_id


class Fleet:
    """The server, an admin token, and helpers to enroll agents and drive jobs."""

    def __init__(self, work: Path, model_dir: Path, *flags: str) -> None:
        self.work, self.model_dir = work, model_dir
        self.port = free_port()
        self.server_home = work / "server"
        self.store = f"sqlite:///{work / 'karr.db'}"
        self.flags = flags
        self.web: WebProcess | None = None
        self.agents: list[AgentProcess] = []
        said = self.start_server()
        self.admin = TOKEN.search(said)[0]
        self.pin = re.search(r"agents pin (sha256//\S+)", said)[1]
        self.context = ssl.create_default_context(
            cafile=str(self.server_home / "web" / "tls" / "ca.pem"))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start_server(self) -> str:
        env = {"KITT_HOME": str(self.server_home), "KITT_STORE": "", "KITT_AUTH_TOKEN": ""}
        self.web = WebProcess("--port", str(self.port), "--store", self.store, *SERVER_FLAGS,
                              *self.flags, env=env,
                              log=self.work / f"web-{len(list(self.work.glob('web-*')))}.log")
        return self.web.wait_for("kitt web: ready")

    def api(self, method: str, path: str, body: Any = None, token: str | None = None
            ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token or self.admin}",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        text = raw.decode()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def enroll(self, name: str, *, token: bool = True) -> AgentProcess:
        home = self.work / name
        home.mkdir()
        models = home / "models"
        shutil.copytree(self.model_dir, models)
        agent = AgentProcess(home, self.work / f"{name}.log")
        env = {}
        if token:
            status, made = self.api("POST", "/api/v1/enrollments", {"name": name})
            assert status == 201, made
            env["KITT_ENROLL_TOKEN"] = made["secret"]
        done = agent.cli("init", "--server", self.url, "--pin", self.pin, "--name", name,
                         "--models", str(models), env=env)
        assert done.returncode == 0, done.stderr + done.stdout
        self.agents.append(agent)
        return agent

    def agent_id(self, agent: AgentProcess) -> str:
        return re.search(r"agent_id: (\S+)", (agent.home / "agent.yaml").read_text())[1]

    def reported(self, agent: AgentProcess) -> bool:
        """Whether the agent's inventory has reached the server (its first heartbeat)."""
        status, body = self.api("GET", f"/api/v1/agents/{self.agent_id(agent)}")
        return status == 200 and body["agent"]["inventory"] is not None

    def submit(self, agent: AgentProcess | None, spec: dict) -> str:
        """Queue a job for `agent` (None: any), checked against what it reported when it
        runs (else the agent's own check refuses what it cannot run)."""
        if agent is not None and agent.proc is not None:
            wait_until(lambda: self.reported(agent), 60, "the agent's first heartbeat")
        full = {"model": "kitt-tiny.gguf", "engine": "llamacpp", **spec}
        status, body = self.api("POST", "/api/v1/jobs", {
            "agent": self.agent_id(agent) if agent else None, "spec": full})
        assert status == 201, body
        return body["job"]["id"]

    def job(self, job_id: str) -> dict:
        status, body = self.api("GET", f"/api/v1/jobs/{job_id}")
        assert status == 200, body
        return body["job"]

    def wait_job(self, job_id: str, states: tuple[str, ...], timeout: float = 180) -> dict:
        wait_until(lambda: self.job(job_id)["state"] in states, timeout,
                   f"job {job_id} to be {' or '.join(states)}")
        return self.job(job_id)

    def server_log(self, job_id: str) -> bytes:
        status, text = self.api("GET", f"/api/v1/jobs/{job_id}/log")
        assert status == 200
        return text.encode() if isinstance(text, str) else json.dumps(text).encode()

    def wait_log(self, job_id: str, line: str, timeout: float = 120) -> None:
        wait_until(lambda: line.encode() in self.server_log(job_id), timeout,
                   f"job {job_id}'s log to show {line!r}")

    def close(self) -> None:
        for agent in self.agents:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.stop()
        if self.web is not None and self.web.proc.poll() is None:
            self.web.stop()


def engine_processes(marker: Path) -> list[int]:
    """llama-server processes serving a model under `marker` (a test's folder)."""
    return [pid for pid, command in processes_mentioning(str(marker))
            if "kitt-tiny.gguf" in command and "-m kitt " not in command]


def wait_quiet(marker: Path, timeout: float = 60) -> None:
    """Nothing of the fleet's jobs still runs (engines, kitt run, shims)."""
    wait_until(lambda: not engine_processes(marker) and not any(
        "kitt_agent.shim" in command for _, command in processes_mentioning(str(marker))),
        timeout, "the jobs' processes to be gone")


def settle(seconds: float) -> None:
    """Let wall time pass where the behaviour under test is about time itself (an outage
    that must outlast the agent's retry back-off)."""
    time.sleep(seconds)
