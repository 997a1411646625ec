"""Native runtime: the engine's server as a child process in its own process group.

Its own session keeps the terminal's Ctrl-C away from it (KITT decides when it stops),
and lets KITT signal the whole group, so helper processes the server forks go too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from kitt._util import signals
from kitt.errors import EngineFailed

_PR_SET_PDEATHSIG = 1


def _die_with_parent_preexec():
    """Ask Linux to SIGKILL the child when KITT dies without tearing down (e.g. SIGKILL).
    Only used from the main thread: the signal fires when the *thread* that forked ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return preexec


class NativeServer:
    """A started server process group; `stop()` leaves nothing of it behind."""

    container_id: str | None = None
    name: str | None = None

    def __init__(self, argv: Sequence[str], log_path: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None):
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        preexec = None
        if threading.current_thread() is threading.main_thread():
            preexec = _die_with_parent_preexec()
        with log_path.open("ab") as log:
            try:
                self.process = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
                    preexec_fn=preexec,
                )
            except OSError as exc:
                raise EngineFailed(f"cannot start {self.argv[0]}: {exc.strerror or exc}",
                                   hint="check that the engine binary exists and is "
                                        "executable") from None
        self.pid = self.process.pid
        self.pgid = self.pid  # start_new_session makes the child its group's leader

    def exit_status(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def stop(self, grace_s: float) -> None:
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while self.process.poll() is None and time.monotonic() < deadline:
                if signals.forced():
                    break
                time.sleep(0.05)
        # Kill whatever is left of the group, leader or not, then reap the leader.
        self._signal_group(signal.SIGKILL)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # unkillable (D state): say so, never hang
            raise EngineFailed(f"process {self.pid} did not die after SIGKILL",
                               hint="check the machine (`ps -o stat -p PID`)") from None
        # SIGKILL is delivered at once but dying takes a moment on a busy machine: return
        # only when no member of the group is left, so "stopped" means gone.
        deadline = time.monotonic() + 30
        while (left := group_members(self.pgid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        if left:
            raise EngineFailed(f"processes {left} of the engine did not die after SIGKILL",
                               hint="check the machine (`ps -o stat -p PID`)")

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (from /proc, for tests and cleanup)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the ")" that ends the command name: state, ppid, pgrp, ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


# -- leftovers of runs that died without tearing down ------------------------------------
# Each native launch writes `<KITT_HOME>/running/<run id>.json`; teardown deletes it. A
# file that is still there after its run ended names a process group to kill.

def record(directory: Path, run_id: str, server: NativeServer) -> Path:
    import json

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run_id}.json"
    path.write_text(json.dumps({"pid": server.pid, "pgid": server.pgid,
                                "argv": server.argv}))
    return path


def cleanup_recorded(directory: Path, *, dry_run: bool = False) -> list[str]:
    """Kill the process groups that recorded runs left; returns descriptions."""
    import json

    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
            pid, pgid, argv = int(entry["pid"]), int(entry["pgid"]), list(entry["argv"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        members = group_members(pgid)
        # The pid may have been reused by an unrelated program: compare the command line.
        if pid in members and _cmdline(pid) != argv:
            members = []
        if members:
            found.append(f"process group {pgid} ({' '.join(argv[:3])} ...)")
            if not dry_run:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        if not dry_run:
            path.unlink(missing_ok=True)
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]
