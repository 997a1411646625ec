"""Loading plugins from entry points, and reading what they register."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

import attrs
import pluggy

from kitt import hookspecs

ENTRY_POINT_GROUP = "kitt"
CORE_DISTRIBUTION = "kitt-core"

pm = pluggy.PluginManager("kitt")
pm.add_hookspecs(hookspecs)


@attrs.frozen
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str


_loaded: dict[str, PluginInfo] = {}
_failures: list[str] = []


def _wanted() -> set[str] | None:
    """`KITT_PLUGINS` restricts which third-party plugins load (entry point or
    distribution names, comma separated). Built-in plugins always load."""
    value = os.environ.get("KITT_PLUGINS")
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def load_plugins() -> None:
    """Import and register every `kitt` entry point once. A plugin that fails to import
    is reported in one line on stderr and skipped."""
    if _loaded or _failures:
        return
    wanted = _wanted()
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        dist_name = dist.metadata["Name"] if dist else "unknown"
        dist_version = dist.version if dist else "unknown"
        builtin = dist_name == CORE_DISTRIBUTION
        if not builtin and wanted is not None and not {entry_point.name, dist_name} & wanted:
            continue
        if entry_point.name in _loaded:
            continue
        try:
            module = entry_point.load()
            pm.register(module, name=entry_point.name)
        except Exception as exc:  # a broken plugin must never break kitt
            message = (
                f"kitt: warning: plugin {entry_point.name!r} from {dist_name} {dist_version} "
                f"failed to load: {type(exc).__name__}: {exc}"
            )
            _failures.append(message)
            _warn_once(message)
            continue
        _loaded[entry_point.name] = PluginInfo(
            entry_point.name, dist_name, dist_version, entry_point.value
        )


def loaded_plugins() -> list[PluginInfo]:
    load_plugins()
    return sorted(_loaded.values(), key=lambda info: (info.distribution != CORE_DISTRIBUTION,
                                                      info.name))


def collect(hook_name: str) -> Iterator[tuple[str, Any]]:
    """Call one `register_*` hook and yield `(plugin name, registered object)` pairs."""
    load_plugins()
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():  # in registration order
        items: list[Any] = []
        try:
            impl.function(register=items.append)
        except Exception as exc:  # like an import failure: warn, skip, carry on
            _warn_once(f"kitt: warning: plugin {impl.plugin_name!r} failed in {hook_name}: "
                       f"{type(exc).__name__}: {exc}")
            continue
        for item in items:
            yield impl.plugin_name, item


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(message.splitlines()[0], file=sys.stderr)


def registered(hook_name: str, key: Callable[[Any], str] = lambda item: item.name) -> dict:
    """Registered objects by name; the first plugin to register a name wins."""
    found: dict[str, Any] = {}
    for plugin_name, item in collect(hook_name):
        name = key(item)
        if name in found:
            print(f"kitt: warning: {hook_name}: {name!r} from plugin {plugin_name!r} ignored; "
                  "another plugin registered that name first", file=sys.stderr)
            continue
        found[name] = item
    return found


def engines() -> dict[str, Any]:
    return registered("register_engines")


def benchmarks() -> dict[str, Any]:
    return registered("register_benchmarks")


def storage_backends() -> dict[str, Any]:
    """Backends keyed by each URL scheme they claim."""
    by_scheme: dict[str, Any] = {}
    for _, backend in collect("register_storage_backends"):
        for scheme in backend.schemes:
            by_scheme.setdefault(scheme, backend)
    return by_scheme


def probes() -> dict[str, Any]:
    return registered("register_fingerprint_probes")
