"""What the tests share besides fixtures (those are in the conftest.py files): running the
real `kitt` command, fixture plugins, requirements CI insists on, free ports, and the
checks that nothing was left running.

`tests/` is on the import path (pytest's `pythonpath`), so tests write
`from support import run_kitt`; the subprocesses the tests start get it too.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
REQUIRED = {part.strip() for part in os.environ.get("KITT_TEST_REQUIRE", "").split(",") if part}


def require(service: str, available: bool, reason: str) -> None:
    """Skip when `service` is missing, unless CI said it must be there (KITT_TEST_REQUIRE)."""
    if available:
        return
    if service in REQUIRED or "all" in REQUIRED:
        pytest.fail(f"{service} is required here (KITT_TEST_REQUIRE) but missing: {reason}")
    pytest.skip(f"{service} not available: {reason}")


def subprocess_env(env: dict[str, str] | None = None, site: Path | None = None
                   ) -> dict[str, str]:
    """This process's environment plus `env`, with `site` (fixture plugins) and `tests/`
    (this package) on PYTHONPATH."""
    full = {**os.environ, **(env or {})}
    paths = [str(site)] if site is not None else []
    full["PYTHONPATH"] = os.pathsep.join([*paths, str(TESTS),
                                          *filter(None, [full.get("PYTHONPATH")])])
    return full


def run_kitt(*args: str, env: dict[str, str] | None = None, site: Path | None = None,
             timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m kitt ARGS` in a subprocess, as a user would (fresh plugin state)."""
    return subprocess.run([sys.executable, "-m", "kitt", *args], capture_output=True,
                          text=True, env=subprocess_env(env, site), timeout=timeout, cwd=cwd,
                          check=False)


def start_kitt(*args: str, env: dict[str, str] | None = None, site: Path | None = None,
               command: tuple[str, ...] = ()) -> subprocess.Popen:
    """`python -m kitt ARGS` in the background (signal tests), stdout and stderr piped,
    in a process group of its own as a shell starts a job (so `interrupt(group=True)`
    reaches KITT and its children, never pytest). `command` goes in front (`timeout`)."""
    return subprocess.Popen([*command, sys.executable, "-m", "kitt", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env(env, site), start_new_session=True)


def wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float = 120, *,
                  stream: str = "stdout") -> str:
    """The first line of `proc`'s `stream` that starts with (or, for stderr, contains)
    `prefix`: the phase a test synchronises on. Lines before it are kept in
    `proc.seen_lines`.

    Reads the pipe's descriptor itself, never through the file object: a buffered
    `readline` can pull the awaited line into its buffer with the one before, and
    `select` then waits for output that may never come."""
    fd = getattr(proc, stream).fileno()
    buffers = proc.__dict__.setdefault("line_buffers", {})
    seen = proc.__dict__.setdefault("seen_lines", [])
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in buffers.get(stream, b""):
            raw, buffers[stream] = buffers[stream].split(b"\n", 1)
            line = raw.decode("utf-8", "replace") + "\n"
            seen.append(line)
            if line.startswith(prefix) if stream == "stdout" else prefix in line:
                return line.strip()
        left = deadline - time.monotonic()
        if left <= 0:
            break
        readable, _, _ = select.select([fd], [], [], min(left, 0.5))
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:  # the process closed it: no such line is coming
                break
            buffers[stream] = buffers.get(stream, b"") + chunk
    proc.kill()
    _, err = proc.communicate()
    pytest.fail(f"no {prefix!r} line from kitt on {stream} (rc {proc.returncode}): "
                f"{''.join(seen)[-2000:]}{err[-3000:]}")


def interrupt(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 60, *,
              group: bool = False) -> tuple[int, str]:
    """Send `sig` to `proc` (to its whole process group with `group`) and wait for it to
    exit; (exit code, all it wrote to stderr)."""
    if group:
        os.killpg(os.getpgid(proc.pid), sig)
    else:
        proc.send_signal(sig)
    return finished(proc, timeout, after=f"{signal.Signals(sig).name}")


def finished(proc: subprocess.Popen, timeout: float = 60, *, after: str = "the test's cue"
             ) -> tuple[int, str]:
    """Wait for `proc` to exit: (exit code, all it wrote to stderr)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"kitt did not exit {timeout}s after {after}: {err[-3000:]}")
    seen = "".join(proc.__dict__.get("seen_lines", []))
    unread = proc.__dict__.get("line_buffers", {}).get("stderr", b"").decode("utf-8",
                                                                            "replace")
    return proc.returncode, seen + unread + err


def wait_delivered(pid: int) -> None:
    """Wait until no signal is pending for `pid`: the kernel has delivered what was sent
    (the process's handler ran, or will when it next runs Python code)."""
    def delivered() -> bool:
        status = Path(f"/proc/{pid}/status").read_text()
        pending = [line.split()[1] for line in status.splitlines()
                   if line.startswith(("SigPnd:", "ShdPnd:"))]
        return all(int(mask, 16) == 0 for mask in pending)

    wait_until(delivered, timeout=10, what=f"the signal to reach process {pid}")


def install_fixture_plugin(name: str, site: Path) -> Path:
    """Make the fixture distribution `name` importable from `site` with its entry points,
    the way an installed wheel is (a `.dist-info` folder beside the package)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project_dir = FIXTURES / "plugins" / name
    project = tomllib.loads((project_dir / "pyproject.toml").read_text())["project"]
    for package in (project_dir / "src").iterdir():
        shutil.copytree(package, site / package.name, dirs_exist_ok=True)
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = ["[kitt]"] + [f"{k} = {v}" for k, v in project["entry-points"]["kitt"].items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_mentioning(marker: str, exclude: tuple[int, ...] = ()) -> list[tuple[int, str]]:
    """Live processes whose command line contains `marker` (e.g. a test's tmp path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), *exclude):
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        cmdline = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        if marker in cmdline and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


def assert_no_processes(marker: str, timeout: float = 5.0) -> None:
    # Reaping by init can take a moment after the parent is gone; nothing may stay.
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"leftover processes: {left}"


def wait_until(condition, timeout: float = 60, what: str = "the condition") -> None:
    """Poll `condition()` until it is true: for events that leave no line to wait on (a
    process appearing, a file written)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
