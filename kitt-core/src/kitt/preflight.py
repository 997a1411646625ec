"""Checks that run before any process or container starts. Each failure is a `BadInput`
(exit 2) naming the problem and the fix, so nothing is left to clean up."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from kitt import plugins
from kitt.errors import BadInput
from kitt.formats import ModelInfo, detect_format

if TYPE_CHECKING:
    from kitt.engine import Engine

# Below this much free space in the log folder, writing engine logs may fail mid-run.
MIN_LOG_DISK_MIB = 64
# Engines need memory beyond the weights (KV cache, buffers); this fraction is a floor.
MEMORY_OVERHEAD = 1.1


def find_engine(name: str) -> Engine:
    engines = plugins.engines()
    if name in engines:
        return engines[name]
    known = ", ".join(sorted(engines)) or "none"
    raise BadInput(f"engine {name!r} is not installed (installed engines: {known})",
                   hint=f"install its plugin, e.g. `pip install kitt-engine-{name}`, "
                        "then check `kitt engines list`")


def check_mode(engine: Engine, mode: str) -> None:
    if mode not in engine.modes:
        raise BadInput(f"engine {engine.name} does not run in {mode} mode "
                       f"(modes: {', '.join(engine.modes)})",
                       hint=f"use --mode {engine.modes[0]}")


def check_options(engine: Engine, options: dict[str, Any]) -> dict[str, Any]:
    """The engine's options validated against its `Options` class, defaults filled in."""
    if engine.Options is None:
        return dict(options)
    fields = {f.name for f in attrs.fields(engine.Options)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise BadInput(f"engine {engine.name} has no option {unknown[0]!r} "
                       f"(options: {', '.join(sorted(fields))})",
                       hint="check the option name (see docs/engines.md)")
    try:
        return attrs.asdict(engine.Options(**options))
    except (TypeError, ValueError) as exc:
        raise BadInput(f"bad option for engine {engine.name}: {exc}",
                       hint="see docs/engines.md for each option's type") from None


def check_model(engine: Engine, model: str) -> ModelInfo:
    """The model, detected from its contents, in a format `engine` serves."""
    info = detect_format(model)
    served = ", ".join(engine.formats)
    if not info.ok:
        raise BadInput(f"model {model!r} cannot be used: {info.problem} "
                       f"(engine {engine.name} serves: {served})", hint=info.fix)
    assert info.format is not None
    if info.format in engine.formats:
        return info
    for fmt, path in info.alternatives.items():
        if fmt in engine.formats:  # e.g. a GGUF beside the safetensors of a folder
            return detect_format(str(path))
    raise BadInput(
        f"model {model!r} is {info.describe()}, but engine {engine.name} serves: {served}",
        hint=_format_fix(info.format, engine),
    )


def _format_fix(fmt: str, engine: Engine) -> str:
    others = sorted(name for name, other in plugins.engines().items()
                    if fmt in other.formats and name != engine.name)
    use = f"use an engine that serves {fmt} ({', '.join(others)}), or " if others else ""
    if "gguf" in engine.formats and fmt in ("safetensors", "pytorch"):
        return (f"{use}convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) "
                f"for {engine.name}")
    if fmt == "gguf":
        return f"{use}give {engine.name} the original Hugging Face model folder"
    if fmt == "ollama":
        return f"{use}give {engine.name} a local model path, not an Ollama tag"
    return f"{use}give a model in one of: {', '.join(engine.formats)}"


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so connections of a stopped server lingering in
        # TIME_WAIT do not block them; only a live listener does. Check the same way.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BadInput(f"port {port} on {host} is already in use",
                               hint="stop whatever listens there, or choose another with "
                                    "--port") from None
            raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror}",
                           hint="choose another --port or host") from None


def check_resources(info: ModelInfo, log_dir: Path) -> None:
    """Enough memory for the weights and enough disk for the engine's log."""
    available = _available_memory_bytes()
    needed = int(info.size_bytes * MEMORY_OVERHEAD)
    if available is not None and needed > available:
        raise BadInput(f"model {info.reference!r} needs about {needed >> 20} MiB of memory, "
                       f"but only {available >> 20} MiB is available",
                       hint="free memory, or use a smaller (quantized) model")
    log_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(log_dir).free
    if free < MIN_LOG_DISK_MIB << 20:
        raise BadInput(f"only {free >> 20} MiB free in {log_dir} for engine logs",
                       hint="free disk space, or set KITT_HOME to another disk")


def _available_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def check_native_binary(engine: Engine, options: dict[str, Any]) -> Path:
    binary = engine.find_native_binary(options)
    if binary is None:
        raise BadInput(f"the {engine.name} server is not installed for native mode",
                       hint=engine.install_hint or "install it, or set the engine's `binary` "
                                                   "option, or use --mode docker")
    return binary
