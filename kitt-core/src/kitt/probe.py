"""The fingerprint probe contract."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs


def _run_command(argv: list[str]) -> str | None:
    """stdout of a short system command, or None when it is missing or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


@attrs.frozen
class ProbeContext:
    """Where probes look. Tests point `root` at a fixture tree and replace the
    command runner and module importer; in normal use they see the real machine."""

    root: Path = Path("/")
    environ: Mapping[str, str] = attrs.field(factory=lambda: dict(os.environ))
    run_command: Callable[[list[str]], str | None] = _run_command
    import_module: Callable[[str], Any] = attrs.field(
        factory=lambda: __import__("importlib").import_module
    )

    def path(self, absolute: str) -> Path:
        """`absolute` (e.g. "/proc/meminfo") under this context's root."""
        return self.root / absolute.lstrip("/")

    def read_text(self, absolute: str) -> str | None:
        try:
            return self.path(absolute).read_text(errors="replace")
        except OSError:
            return None


@attrs.frozen
class Probe:
    """A named fingerprint probe; see the `register_fingerprint_probes` hook."""

    name: str
    collect: Callable[[ProbeContext], Any]
