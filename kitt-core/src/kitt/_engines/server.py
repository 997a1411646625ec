"""What the runtimes have in common: a started server and the handle callers get."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import attrs


class Server(Protocol):
    """A started engine server (a process group or a container)."""

    log_path: Path
    pid: int | None
    """Native mode: the server's process id (it leads its own process group)."""
    container_id: str | None
    name: str | None
    """Docker mode: the container's id and name."""

    def exit_status(self) -> str | None:
        """None while running; otherwise how it ended, e.g. "exit code 1"."""

    def stop(self, grace_s: float) -> None:
        """Stop gracefully, kill after `grace_s`; idempotent; never leaves anything."""


@attrs.define
class RunningEngine:
    """A healthy engine server. `pid` is set in native mode, `container_id` in docker."""

    engine: str
    mode: str
    base_url: str
    port: int
    model: str
    model_path: str | None
    served_name: str
    api: str
    run_id: str
    log_path: Path
    server: Server = attrs.field(repr=False)
    pid: int | None = None
    container_id: str | None = None
    container_name: str | None = None
    image: str | None = None
    options: dict = attrs.field(factory=dict)
    version: str | None = None
    version_source: str | None = None
    """Where `version` was read (`kitt.EngineVersion.source`)."""

    def exit_status(self) -> str | None:
        return self.server.exit_status()

    def to_json(self) -> dict:
        return {
            "engine": self.engine, "mode": self.mode, "base_url": self.base_url,
            "port": self.port, "model": self.model, "model_path": self.model_path,
            "served_name": self.served_name, "api": self.api, "run_id": self.run_id,
            "log_path": str(self.log_path), "pid": self.pid,
            "container_id": self.container_id, "container_name": self.container_name,
            "image": self.image, "options": self.options, "version": self.version,
            "version_source": self.version_source,
        }
