"""Engine config files (`kitt run --config FILE`) and named profiles (`--profile NAME`).

A profile is an engine config file found by name: `KITT_HOME/profiles/NAME.yaml`, then
the profiles built into kitt-core. Layers apply in order, later wins per key:
profile, config file, command-line flags (docs/configs.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from kitt._util.yamlfile import load_yaml, plain
from kitt.errors import BadInput
from kitt.plugins import engine_name
from kitt.records import EngineConfig

BUILTIN_PROFILES = Path(__file__).parent / "profiles"
CONFIG_KEYS = ("engine", "mode", "image", "port", "options", "extra_args", "description")
MODES = ("native", "docker")


@attrs.frozen
class ConfigLayer:
    """The keys one file set (None: not set there)."""

    source: str
    engine: str | None = None
    mode: str | None = None
    image: str | None = None
    port: int | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    extra_args: tuple[str, ...] | None = None


def profile_dirs() -> list[Path]:
    from kitt._util.files import kitt_home

    return [kitt_home() / "profiles", BUILTIN_PROFILES]


def available_profiles() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in profile_dirs():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def load_profile(name: str) -> ConfigLayer:
    profiles = available_profiles()
    if name not in profiles:
        raise BadInput(f"unknown engine profile {name!r}",
                       hint=f"use one of: {', '.join(sorted(profiles)) or 'none installed'}, "
                            "or add KITT_HOME/profiles/NAME.yaml")
    return load_config_file(profiles[name])


def load_config_file(path: Path) -> ConfigLayer:
    doc = load_yaml(path, what="engine config")
    top = doc.mapping(doc.data, field="(top level)")
    doc.only_keys(top, CONFIG_KEYS)
    values: dict[str, Any] = {}
    for key in ("engine", "image", "description"):
        if key in top:
            values[key] = doc.string(top[key], field=key, parent=top, key=key)
    if "mode" in top:
        if top["mode"] not in MODES:
            raise doc.error(f"unknown mode {top['mode']!r}", top, "mode", field="mode",
                            hint="use native or docker")
        values["mode"] = top["mode"]
    if "port" in top:
        port = top["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise doc.error(f"expected a port number 1-65535, got {port!r}", top, "port",
                            field="port")
        values["port"] = port
    if "options" in top:
        values["options"] = plain(doc.mapping(top["options"], field="options", parent=top,
                                              key="options"))
    if "extra_args" in top:
        args = top["extra_args"]
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise doc.error("expected a list of strings", top, "extra_args", field="extra_args",
                            hint='write extra_args: ["--flag", "value"]')
        values["extra_args"] = tuple(args)
    values.pop("description", None)
    return ConfigLayer(source=str(path), **values)


def merge(engine: str, layers: list[ConfigLayer], *, default_mode: str | None = None
          ) -> EngineConfig:
    """One EngineConfig from `layers` (later wins); options merge key by key. Engine
    names are stored as the engine's own name, whatever alias was given. The mode no
    layer sets is `default_mode`, else `KITT_MODE` (the KITT image sets `docker`), else
    native."""
    engine = engine_name(engine)
    default_mode = default_mode or _mode_from_environment()
    config: dict[str, Any] = {"engine": engine, "mode": default_mode, "image": None,
                              "port": None, "options": {}, "extra_args": ()}
    for layer in layers:
        if layer.engine is not None and engine_name(layer.engine) != engine:
            raise BadInput(
                f"{layer.source} is a config for engine {layer.engine!r}, not {engine!r}",
                hint=f"use -e {layer.engine}, or a config written for {engine}")
        for key in ("mode", "image", "port", "extra_args"):
            value = getattr(layer, key)
            if value is not None:
                config[key] = value
        config["options"] = {**config["options"], **layer.options}
    return EngineConfig(**config)


def _mode_from_environment() -> str:
    mode = os.environ.get("KITT_MODE") or "native"
    if mode not in ("native", "docker"):
        raise BadInput(f"KITT_MODE is {mode!r}, not a launch mode",
                       hint="set KITT_MODE to native or docker, or unset it")
    return mode
