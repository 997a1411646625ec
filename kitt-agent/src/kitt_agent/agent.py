"""The agent's loop (`kitt-agent start`): heartbeat on the server's interval, claim one
job at a time by long poll, run it in its own process group, upload its log as it grows
and its result when it ends, report its final state. Every upload and report is retried
until the server has it: the spool on disk is the truth, the server's copy follows it.

Stopping (SIGTERM, SIGINT, `kitt-agent stop`): no new job is claimed; a running job is
cancelled (SIGTERM, grace, SIGKILL) and reported, then the agent exits 0. A second
signal exits at once; the job goes on and the next start re-attaches to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import kitt
from kitt_agent import __version__, container, inventory
from kitt_agent import config as agent_config
from kitt_agent.client import PinMismatch, Refused, ServerClient, Unreachable
from kitt_agent.jobs import JobRun
from kitt_agent.spec import Unrunnable, child_env, plan

CHUNK = 64 * 1024
INVENTORY_TTL_S = 60.0
EXIT_REFUSED = 3


def say(message: str) -> None:
    print(f"kitt-agent {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class Fatal(Exception):
    """The agent must stop: the message says why and what to do."""


class Agent:
    def __init__(self, home: Path, config: agent_config.AgentConfig) -> None:
        self.home, self.config = home, config
        self.settings: dict[str, Any] = {}
        self.heartbeat_s = 15.0
        self.current: JobRun | None = None
        self.stopping = asyncio.Event()
        self.fatal: Fatal | None = None
        self.orphaned: set[str] = set()
        """Jobs of an identity the server no longer knows: kept on disk, not reported."""
        self._inventory: tuple[float, dict] | None = None
        self._cancelling: asyncio.Task | None = None
        self._offered: str | None = None
        self.client: ServerClient

    # -- settings ----------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        chosen = self.settings.get("model_dir") or self.config.model_dir
        return Path(chosen) if chosen else self.home / "models"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.home / 'agent' / 'kitt.db'}"

    async def inventory(self, fresh: bool = False) -> dict:
        now = time.monotonic()
        if fresh or self._inventory is None or now - self._inventory[0] > INVENTORY_TTL_S:
            self._inventory = (now, await asyncio.to_thread(
                inventory.collect, self.model_dir, self.settings.get("kitt_image")))
        return self._inventory[1]

    # -- the loop ----------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        signals = []

        def stop(signum: int) -> None:
            signals.append(signum)
            if len(signals) > 1:
                say("second signal: exiting now; the job goes on, and the next start "
                    "re-attaches to it")
                os._exit(128 + signum)
            say(f"{signal.Signals(signum).name}: stopping (a running job is cancelled)")
            self.stopping.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        pid_file = self.home / "agent" / "agent.pid"
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")
        try:
            async with ServerClient(self.config.server, pin=self.config.pin,
                                    ca_file=self.config.ca_file, agent_id=self.config.agent_id,
                                    token=self.config.token) as self.client:
                say(f"agent {self.config.name} ({self.config.agent_id}) serving "
                    f"{self.config.server}")
                beat = asyncio.create_task(self._heartbeats())
                work = asyncio.create_task(self._work())
                stopped = asyncio.create_task(self.stopping.wait())
                await asyncio.wait({beat, work, stopped}, return_when=asyncio.FIRST_COMPLETED)
                self.stopping.set()
                for task in (beat, work):
                    if task.done() and task.exception() is not None \
                            and not isinstance(task.exception(), Fatal):
                        raise task.exception()
                beat.cancel()
                await self._stop_current(work)
                for task in (beat, work, stopped):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Fatal, Refused):
                        await task
        finally:
            pid_file.unlink(missing_ok=True)
        if self.fatal is not None:
            say(str(self.fatal))
            return EXIT_REFUSED
        say("stopped")
        return 0

    async def _stop_current(self, work: asyncio.Task) -> None:
        """On the way out: a running job is cancelled; the work loop reports it (unless
        the server refused this agent: then it is only stopped) and ends."""
        run = self.current
        if run is not None and run.alive():
            await run.cancel(self.config.kill_grace_s,
                             "the agent's token was refused" if self.fatal else
                             "the agent was stopped")
        if self.current is not None and self.fatal is None and not work.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(work), 120)

    def _refused(self, refused: Refused) -> None:
        self.fatal = Fatal(f"the server refused this agent ({refused.status} "
                           f"{refused.code}): {refused.message}. Fix: {refused.hint or ''}")
        self.stopping.set()

    async def _heartbeats(self) -> None:
        while not self.stopping.is_set():
            try:
                await self._heartbeat()
            except Refused as refused:
                if refused.status == 404:
                    await self._reenroll(refused)
                    continue
                self._refused(refused)
                return
            except (Unreachable, PinMismatch, kitt.BadInput) as exc:
                say(f"heartbeat failed: {exc}; retrying")
            interval = self.heartbeat_s * random.uniform(0.8, 1.2)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)

    async def _heartbeat(self) -> None:
        running = [self.current.id] if self.current is not None else []
        progress = {}
        if self.current is not None:
            progress[self.current.id] = {"log_bytes": _size(self.current.log_path),
                                         "last_line": self.current.last_line()}
        _, reply = await self.client.call("POST", self.client.agent_path("heartbeat"),
                                          json_body={"version": __version__,
                                                     "running": running,
                                                     "progress": progress,
                                                     "inventory": await self.inventory()})
        reply = reply or {}
        if reply.get("token"):
            await self._rotate(reply["token"])
        self.heartbeat_s = float(reply.get("heartbeat_s") or self.heartbeat_s)
        offered = reply.get("agent_version")
        if offered and offered != __version__ and offered != self._offered:
            say(f"the server offers kitt-agent {offered} (this is {__version__}): "
                "kitt-agent update --restart installs it")
        self._offered = offered
        settings = reply.get("settings") or {}
        if settings != self.settings:
            if self.settings:
                say(f"settings from the server: {settings}")
            self.settings = settings
            self._inventory = None
        for job_id in reply.get("cancel") or []:
            if self.current is not None and self.current.id == job_id \
                    and not self.current.cancel_asked:
                # Not awaited here: the heartbeats go on while the job winds down.
                self._cancelling = asyncio.create_task(self.current.cancel(
                    self.config.kill_grace_s, "cancelled from the server"))

    async def _rotate(self, token: str) -> None:
        """A new token from the server: on disk first (atomically), then in use."""
        self.config = self.config.with_token(token)
        await asyncio.to_thread(agent_config.save, self.home, self.config)
        self.client.token = token
        say("the server rotated this agent's token; the new one is saved")

    async def _reenroll(self, refused: Refused) -> None:
        """The server does not know this agent (its database was reset, or the agent was
        deleted): register again through open enrollment, as pending, and wait for an
        admin. The old identity's jobs stay in the spool."""
        say(f"{refused.message}: enrolling again (pending until an admin approves)")
        if self.current is not None:
            self.orphaned.add(self.current.id)
        try:
            enrolled = await register(self.client, name=self.config.name, enrollment=None)
        except Refused as again:
            self._refused(again)
            return
        except kitt.BadInput as exc:
            self.fatal = Fatal(f"cannot enroll again: {exc}")
            self.stopping.set()
            return
        self.config = agent_config.AgentConfig(**{
            **{k: getattr(self.config, k) for k in ("server", "name", "pin", "ca_file",
                                                     "model_dir", "kill_grace_s")},
            "agent_id": enrolled["agent_id"], "token": enrolled["token"]})
        await asyncio.to_thread(agent_config.save, self.home, self.config)
        self.client.agent_id, self.client.token = self.config.agent_id, self.config.token
        say(f"enrolled again as {self.config.agent_id} ({enrolled['state']})")

    async def _work(self) -> None:
        running = frozenset(job.id for job in JobRun.leftovers(self.home) if job.alive())
        for name in await asyncio.to_thread(container.remove_containers,
                                            self.config.agent_id, keep=running):
            say(f"removed {name}, the container of a job that no longer runs")
        for leftover in JobRun.leftovers(self.home):
            if leftover.job.get("agent_id") != self.config.agent_id:
                continue  # another identity's: the server no longer knows it
            if not leftover.started:  # claimed, never started: start it now
                await self._execute(leftover.job)
                continue
            say(f"re-attaching to job {leftover.id} from an earlier start")
            self.current = leftover
            await self._supervise(leftover)
            self.current = None
        while not self.stopping.is_set():
            asked = time.monotonic()
            try:
                status, body = await self.client.call(
                    "POST", self.client.agent_path("claim"), params={"wait": "25"})
            except Refused as refused:
                if refused.status == 404:
                    await asyncio.sleep(1)  # the heartbeat re-enrolls
                    continue
                self._refused(refused)
                return
            except (Unreachable, PinMismatch, kitt.BadInput) as exc:
                say(f"claim failed: {exc}; retrying")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), 5)
                continue
            if status != 200 or not body or self.stopping.is_set():
                if time.monotonic() - asked < 1:  # a server that does not hold the poll
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), 1)
                continue
            await self._execute(body["job"])

    async def _execute(self, job: dict) -> None:
        run = JobRun.create(self.home, job, self.config.agent_id)
        self.current = run
        try:
            if not run.started:
                say(f"job {run.id} ({job['kind']}, attempt {job['attempt']})")
                try:
                    job_plan = plan(job["kind"], job["spec"], job_dir=run.folder,
                                    model_dir=self.model_dir, store_url=self.store_url)
                except Unrunnable as exc:
                    run.say(f"refused: {exc}")
                    await self._flush_log(run)
                    await self._report(run, "failed", reason=f"refused by agent "
                                       f"{self.config.name}: {exc}")
                    return
                if job_plan.deletes:
                    await self._delete(run, job_plan.deletes)
                    return
                if run.cancel_asked:  # cancelled between the claim and now: never start
                    await self._flush_log(run)
                    await self._report(run, "cancelled", reason="cancelled before it started")
                    return
                argv = await self._in_image(run, job_plan)
                run.start(argv, child_env(self.home), job_plan.files)
                if run.cancel_asked:  # a cancel that came while it was starting
                    self._cancelling = asyncio.create_task(run.cancel(
                        self.config.kill_grace_s, "cancelled from the server"))
                await self._report(run, "running")
            await self._supervise(run)
        finally:
            self.current = None
            self._inventory = None  # storage and models may have changed

    async def _in_image(self, run: JobRun, job_plan) -> tuple[str, ...]:
        """The command to start: the plan's, as a `docker run` of the KITT image when the
        job may run there and this agent has one (container.py)."""
        image = await asyncio.to_thread(container.choose_image,
                                        self.settings.get("kitt_image")) \
            if job_plan.in_image else None
        shown = " ".join(job_plan.argv[2:])
        if image is not None:
            try:
                argv = container.wrap(job_plan.argv, image=image, job_id=run.id,
                                      agent_id=self.config.agent_id, home=self.home,
                                      model_dir=self.model_dir)
            except kitt.BadInput as exc:
                run.say(f"not in {image}: {exc}")
            else:
                run.say(f"running in {image}: {shown}")
                return argv
        run.say(f"running: {shown}")
        return job_plan.argv

    async def _delete(self, run: JobRun, paths) -> None:
        import shutil

        for path in paths:
            run.say(f"deleting {path}")
            await asyncio.to_thread(shutil.rmtree if path.is_dir() else path.unlink, path)
        await self._flush_log(run)
        await self._report(run, "succeeded")

    async def _supervise(self, run: JobRun) -> None:
        uploading = asyncio.create_task(self._follow_log(run))
        code = await run.wait()
        uploading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await uploading
        await self._conclude(run, code)

    async def _conclude(self, run: JobRun, code: int | None = None) -> None:
        code = run.exit_code() if code is None else code
        if run.id in self.orphaned:
            say(f"job {run.id} ended; its server no longer knows it: its log and results "
                f"stay in {run.folder}")
            run.mark_reported()
            return
        state, reason = run.outcome(code)
        result = run.result_file()
        if result is not None:
            run_id = await self._upload_result(run, result)
            if run_id:
                run.say(f"result uploaded: run {run_id}")
        elif state == "succeeded":
            state, reason = "failed", "kitt exited 0 but wrote no metrics.json"
        if state != "succeeded":
            run.say(f"job {state}: {reason}")
        await self._flush_log(run)
        await self._report(run, state, reason=reason, exit_code=code)

    # -- uploads, each retried until the server has it ------------------------------------
    async def _retrying(self, what: str, call):
        delay = 1.0
        while True:
            try:
                return await call()
            except (Unreachable, PinMismatch) as exc:
                if self.stopping.is_set() and self.fatal is not None:
                    raise
                say(f"{what} failed: {exc}; retrying in {delay:.0f} s (kept in the spool)")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _report(self, run: JobRun, state: str, **fields: Any) -> None:
        body = {"state": state, **{k: v for k, v in fields.items() if v is not None}}
        _status, reply = await self._retrying(f"reporting job {run.id} {state}", lambda: (
            self.client.call("POST", self.client.agent_path(f"jobs/{run.id}/state"),
                             json_body=body)))
        job = (reply or {}).get("job") or {}
        if state != "running":
            run.mark_reported()
            say(f"job {run.id}: {job.get('state', state)}")
        elif job.get("state") in ("cancelled", "lost"):
            await run.cancel(self.config.kill_grace_s, f"the server ended the job "
                             f"({job.get('state')}: {job.get('reason')})")

    async def _upload_result(self, run: JobRun, path: Path) -> str | None:
        data = await asyncio.to_thread(path.read_bytes)
        digest = hashlib.sha256(data).hexdigest()
        status, reply = await self._retrying(f"uploading job {run.id}'s result", lambda: (
            self.client.call("PUT", self.client.agent_path(f"jobs/{run.id}/result"),
                             data=data, headers={"X-Content-SHA256": digest,
                                                 "Content-Type": "application/json"})))
        if status == 409:
            run.say(f"the server refused the result: {(reply or {}).get('error')}")
            return None
        return (reply or {}).get("run_id")

    async def _follow_log(self, run: JobRun) -> None:
        offset = 0
        while True:
            offset = await self._send_log(run, offset)
            await asyncio.sleep(0.5)

    async def _flush_log(self, run: JobRun) -> None:
        """Everything in the spool, the last line too if it has no line end."""
        await self._send_log(run, 0, final=True)

    async def _send_log(self, run: JobRun, offset: int, final: bool = False) -> int:
        """Send the log from `offset` (the server's size, as far as we know) in chunks
        cut at line ends; the server's reply is the new offset, and a 409 says where it
        really is."""
        while True:
            chunk = _read_chunk(run.log_path, offset, final)
            if not chunk and offset > 0:
                return offset
            status, reply = await self._retrying(
                f"uploading job {run.id}'s log",
                lambda c=chunk, at=offset: self.client.call(
                    "PUT", self.client.agent_path(f"jobs/{run.id}/log"), data=c,
                    params={"offset": str(at)},
                    headers={"Content-Type": "application/octet-stream"}))
            held = int((reply or {}).get("offset", offset + len(chunk)))
            if status == 409 or held != offset + len(chunk):
                offset = held  # resend from where the server is
                continue
            offset = held
            if not chunk:
                return offset


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_chunk(path: Path, offset: int, final: bool = False) -> bytes:
    """Up to CHUNK bytes from `offset`, ending at a line end when there is one (a line
    longer than CHUNK is cut, at a UTF-8 character boundary); `final`: the job has
    ended, so an unfinished last line goes too."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(CHUNK)
    except OSError:
        return b""
    if len(data) < CHUNK:
        if final:
            return data
        end = data.rfind(b"\n")
        return data[:end + 1] if end >= 0 else b""
    end = data.rfind(b"\n")
    if end >= 0:
        return data[:end + 1]
    cut = len(data)
    while cut > 0 and (data[cut - 1] & 0xC0) == 0x80:  # continuation bytes
        cut -= 1
    if cut > 0 and data[cut - 1] >= 0xC0:  # the lead byte of a character cut short
        cut -= 1
    return data[:cut] or data


async def register(client: ServerClient, *, name: str, enrollment: str | None) -> dict:
    """Register this host with the server (docs/agent-protocol.md): its name, hostname,
    version and full hardware fingerprint."""
    fingerprint = await asyncio.to_thread(kitt.take_fingerprint)
    body: dict[str, Any] = {"name": name, "hostname": socket.gethostname(),
                            "version": __version__, "hardware": kitt.unstructure(fingerprint)}
    if enrollment:
        body["enrollment_token"] = enrollment
    status, reply = await client.call("POST", "/api/v1/agent/register", json_body=body,
                                      authorized=False, ok=(201,))
    if status != 201 or not reply:
        raise kitt.BadInput(f"registration failed: {reply}")
    return reply
