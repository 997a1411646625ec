"""A job on this host: its folder in the spool, its process group, and its outcome.

    AGENT_HOME/agent/jobs/JOB_ID/
        job.json      the job as claimed (id, kind, spec, attempt, agent id)
        log           everything the job printed: the spool the server's copy follows
        pid           the shim's pid and start time (to re-attach after an agent restart)
        exit_code     written by the shim when the job's process ends
        cancel        present once a cancel was asked (it survives a restart)
        reported      present once the server has the final state: the folder may go
        results/      kitt run's results folder (metrics.json is uploaded)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

EXIT_MEANINGS = {1: "a benchmark failed", 2: "bad input", 3: "the engine failed",
                 127: "the job could not start", 130: "stopped by SIGINT",
                 143: "stopped by SIGTERM", -9: "killed (SIGKILL)"}


def jobs_root(home: Path) -> Path:
    return home / "agent" / "jobs"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (/proc/PID/stat field 22): a pid and this
    name one process, even after pids wrap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


class JobRun:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.job: dict[str, Any] = json.loads((folder / "job.json").read_text())
        self.proc: subprocess.Popen | None = None
        self.killed = False

    @property
    def id(self) -> str:
        return self.job["id"]

    @classmethod
    def create(cls, home: Path, job: dict[str, Any], agent_id: str) -> JobRun:
        folder = jobs_root(home) / job["id"]
        if folder.exists() and not (folder / "pid").exists():
            shutil.rmtree(folder)  # claimed before, never started: start afresh
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "job.json").exists():
            _write(folder / "job.json", json.dumps({**job, "agent_id": agent_id}))
        return cls(folder)

    @classmethod
    def leftovers(cls, home: Path) -> list[JobRun]:
        """Jobs of an earlier agent process whose final state the server has not got."""
        root = jobs_root(home)
        if not root.is_dir():
            return []
        found = []
        for folder in sorted(root.iterdir()):
            if (folder / "job.json").is_file() and not (folder / "reported").exists():
                found.append(cls(folder))
        return found

    @property
    def log_path(self) -> Path:
        return self.folder / "log"

    def say(self, line: str) -> None:
        """A line of the agent's own in the job's log (what it did, and why)."""
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(f"kitt-agent: {line}\n")

    @property
    def started(self) -> bool:
        return (self.folder / "pid").exists()

    def start(self, argv: tuple[str, ...], env: dict[str, str], files: dict[str, str]) -> None:
        for name, content in files.items():
            _write(self.folder / name, content)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kitt_agent.shim", str(self.folder), *argv],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=self.folder, start_new_session=True)
        _write(self.folder / "pid", f"{self.proc.pid} {_start_time(self.proc.pid) or ''}\n")

    def _pid(self) -> tuple[int, str] | None:
        try:
            pid, _, started = (self.folder / "pid").read_text().strip().partition(" ")
            return int(pid), started
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        found = self._pid()
        return found is not None and _start_time(found[0]) == found[1] and bool(found[1])

    def exit_code(self) -> int | None:
        try:
            return int((self.folder / "exit_code").read_text().strip())
        except (OSError, ValueError):
            return None

    async def wait(self) -> int | None:
        """The job's exit status once its process group leader (the shim) is gone; None
        when it died without saying (killed with the shim, or the host rebooted)."""
        while self.alive():
            if self.proc is not None:
                await asyncio.to_thread(self.proc.wait)
            else:  # re-attached: not our child, nothing to wait on but its pid
                await asyncio.sleep(0.5)
        return self.exit_code()

    @property
    def cancel_asked(self) -> bool:
        return (self.folder / "cancel").exists()

    async def cancel(self, grace_s: float, why: str) -> None:
        """SIGTERM to the job's process group; SIGKILL if it is still there after
        `grace_s`. kitt run stores what it measured as an interrupted run on SIGTERM.
        Before the job has started, the mark alone keeps it from starting."""
        if not self.cancel_asked:
            _write(self.folder / "cancel", why + "\n")
            self.say(f"{why}: stopping the job (SIGTERM, then SIGKILL after {grace_s:.0f} s)"
                     if self.started else f"{why} before it started")
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if self.alive():
            self.say(f"the job did not stop within {grace_s:.0f} s: SIGKILL")
            self.killed = True
            self._signal(signal.SIGKILL)
            # A killed `docker run` client leaves its container running: remove it.
            from kitt_agent.container import remove_containers

            agent_id = self.job.get("agent_id", "")
            for name in await asyncio.to_thread(remove_containers, agent_id, self.id):
                self.say(f"removed the job's container {name}")

    def _signal(self, sig: int) -> None:
        found = self._pid()
        if found is None or not self.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(found[0], sig)

    def outcome(self, code: int | None) -> tuple[str, str | None]:
        """(final state, reason) from the exit status."""
        if self.cancel_asked:
            why = (self.folder / "cancel").read_text().strip()
            return "cancelled", f"{why}; the job ended {_meaning(code)}"
        if code == 0:
            return "succeeded", None
        return "failed", f"kitt exited {_meaning(code)}"

    def tail(self, lines: int = 20) -> str:
        try:
            data = self.log_path.read_bytes()[-8192:]
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])

    def last_line(self) -> str:
        for line in reversed(self.tail(5).splitlines()):
            if line.strip():
                return line.strip()[:200]
        return ""

    def result_file(self) -> Path | None:
        path = self.folder / "results" / "metrics.json"
        return path if path.is_file() else None

    def mark_reported(self) -> None:
        _write(self.folder / "reported", time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))


SPOOL_STATES = ("not started", "running", "succeeded", "failed", "cancelled")


def spool(home: Path) -> list[dict[str, Any]]:
    """Every job in this agent's spool, oldest first: its state here and whether the
    server has its final state (`kitt-agent status`, `kitt-agent test list`)."""
    root = jobs_root(home)
    rows = []
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if not (folder / "job.json").is_file():
                continue
            run = JobRun(folder)
            code = run.exit_code()
            if run.alive():
                state = "running"
            elif not run.started:
                state = "not started"
            else:
                state = run.outcome(code)[0]
            rows.append({"job": run.id, "kind": run.job.get("kind"), "state": state,
                         "running": state == "running", "exit_code": code,
                         "reported": (folder / "reported").exists(), "folder": str(folder)})
    return rows


def _meaning(code: int | None) -> str:
    if code is None:
        return "without an exit status (its process was killed)"
    meaning = EXIT_MEANINGS.get(code)
    return f"with {code}" + (f" ({meaning})" if meaning else "")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
