"""Memory samplers for `memory_usage`: each `sample()` returns {series name: MiB}.

- `ProcessTreeRss`: native engines. The engine is `target.pid`'s process group (KITT
  starts engines in their own session) plus any descendants, read from /proc.
- `ContainerMemory`: docker engines, through the Docker API (`docker` imported lazily).
- `GpuMemory`: every NVIDIA GPU's used memory through NVML (`pynvml`, lazily).
`Sampler` runs them in a background thread at an interval.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

MIB = 1024 * 1024
PROC = Path("/proc")


class MemorySource(Protocol):
    name: str

    def sample(self) -> dict[str, float]: ...


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgrp) from /proc/<pid>/stat; None when the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[2])


def _rss_kib(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0  # gone, or a kernel thread (no VmRSS)


def process_tree(pid: int) -> set[int]:
    """`pid`, its descendants, and — when `pid` leads its own process group, as engines
    KITT starts do — every member of that group. Our own group is never taken whole
    (an engine launched without a session of its own would share it with KITT)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                table[int(entry.name)] = stat
    if pid not in table:
        return set()
    group = table[pid][1]
    members = {pid}
    if group == pid and group != os.getpgrp():
        members |= {p for p, (_, pgrp) in table.items() if pgrp == group}
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    stack = list(members)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in members:
                members.add(child)
                stack.append(child)
    return members


class ProcessTreeRss:
    name = "rss"

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pids: set[int] = set()

    def sample(self) -> dict[str, float]:
        self.pids = process_tree(self.pid)
        if not self.pids:
            return {}
        return {"rss": sum(_rss_kib(p) for p in self.pids) / 1024.0}


class ContainerMemory:
    """The container's memory usage as `docker stats` shows it: usage minus inactive
    page cache (cgroup v2 `inactive_file`, v1 `total_inactive_file`)."""

    name = "container_memory"

    def __init__(self, container_id: str) -> None:
        import kitt

        self.container = kitt.docker_client().containers.get(container_id)

    def sample(self) -> dict[str, float]:
        stats = self.container.stats(stream=False, one_shot=True)
        memory = stats.get("memory_stats") or {}
        usage = memory.get("usage")
        if usage is None:
            return {}
        inner = memory.get("stats") or {}
        cache = inner.get("inactive_file", inner.get("total_inactive_file", 0))
        return {"container_memory": (usage - cache) / MIB}


class GpuMemory:
    """Used memory of each GPU (`gpu0_memory`, ...): the whole device, so other
    processes on the GPU count too."""

    name = "gpu_memory"

    def __init__(self) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i)
                        for i in range(pynvml.nvmlDeviceGetCount())]

    def sample(self) -> dict[str, float]:
        return {f"gpu{i}_memory": self._nvml.nvmlDeviceGetMemoryInfo(h).used / MIB
                for i, h in enumerate(self.handles)}

    def close(self) -> None:
        # Shutting down a library that may already be gone must not fail a benchmark.
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


def gpu_memory() -> GpuMemory | None:
    """NVML when a driver and at least one GPU exist, else None."""
    try:
        source = GpuMemory()
    except Exception:  # no pynvml, no driver (NVMLError_LibraryNotFound...), no GPU
        return None
    if not source.handles:
        source.close()
        return None
    return source


class Sampler:
    """Samples every source now, every `interval_s` in a thread, and on `stop()`.
    `points` holds (perf_counter_ns, {series: MiB}); a source that raises is recorded in
    `errors` and sampling goes on."""

    def __init__(self, sources: Sequence[MemorySource], interval_s: float) -> None:
        self.sources = list(sources)
        self.interval_s = interval_s
        self.points: list[tuple[int, dict[str, float]]] = []
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kitt-memory-sampler",
                                        daemon=True)

    def sample_once(self) -> None:
        t = time.perf_counter_ns()
        values: dict[str, float] = {}
        for source in self.sources:
            try:
                values.update(source.sample())
            except Exception as exc:  # one bad read must not end sampling
                key = f"{source.name}: {type(exc).__name__}: {exc}"[:200]
                self.errors[key] = self.errors.get(key, 0) + 1
        self.points.append((t, values))

    def start(self) -> None:
        self.sample_once()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample_once()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_once()

    def series(self, t0_ns: int, since_ns: int | None = None) -> dict[str, list[list[float]]]:
        """{series: [[t_s from t0_ns, MiB], ...]} of the points at or after `since_ns`."""
        out: dict[str, list[list[float]]] = {}
        for t, values in self.points:
            if since_ns is not None and t < since_ns:
                continue
            for name, mib in values.items():
                out.setdefault(name, []).append([round((t - t0_ns) / 1e9, 4), round(mib, 3)])
        return out


def describe(source: Any) -> str:
    return getattr(source, "name", type(source).__name__)
