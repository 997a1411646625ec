"""Where KITT keeps its files, and how it writes the ones that must survive a crash."""

from __future__ import annotations

import os
from pathlib import Path


def kitt_home() -> Path:
    """`KITT_HOME`, default `~/.kitt`: the store, results, suites, profiles, engines.yaml."""
    return Path(os.environ.get("KITT_HOME") or Path.home() / ".kitt").expanduser()


def write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Replace `path` with `text` so that a crash leaves the old file or the new one,
    never a truncated one (a later import or resume would read it). `durable=False`
    skips the fsync, for files that can be rebuilt (caches)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not publish an empty file
    os.replace(tmp, path)
