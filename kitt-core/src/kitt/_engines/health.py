"""Waiting for an engine to become ready, and noticing when it dies instead."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kitt.errors import EngineFailed

TAIL_LINES = 25


def last_lines(path: Path, n: int = TAIL_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    lines = text.splitlines()[-n:]
    return "\n".join(f"    {line}" for line in lines) or "    (log is empty)"


def probe(url: str, timeout_s: float = 2.0) -> tuple[int, bytes] | None:
    """(status, body) of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(64 * 1024) if exc.fp else b""
    except (OSError, ValueError):  # refused, reset, timeout, half-open during startup
        return None


def wait_until_healthy(
    url: str,
    is_healthy: Callable[[int, bytes], bool],
    *,
    exit_status: Callable[[], str | None],
    timeout_s: float,
    log_path: Path,
    what: str,
) -> None:
    """Poll `url` with backoff until `is_healthy`; fail fast when the server exits."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    last = "no answer"
    while True:
        ended = exit_status()
        if ended is not None:
            raise EngineFailed(
                f"{what} exited ({ended}) before becoming ready. Last log lines:\n"
                f"{last_lines(log_path)}",
                hint=f"read the full log at {log_path}; check the model and engine options",
            )
        answer = probe(url)
        if answer is not None:
            status, body = answer
            if is_healthy(status, body):
                return
            last = f"HTTP {status} {body[:200].decode('utf-8', 'replace').strip()}"
        if time.monotonic() >= deadline:
            raise EngineFailed(
                f"{what} did not become ready at {url} within {timeout_s:g} s "
                f"(last answer: {last}). Last log lines:\n{last_lines(log_path)}",
                hint=f"raise --ready-timeout if it is still loading; full log: {log_path}",
            )
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 1.0)
