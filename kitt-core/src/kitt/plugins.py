"""Loading plugins, and reading what they register.

The built-in plugins are listed here in code and registered exactly like third-party
ones, which come from entry points in the `kitt` group. A source tree that was never
installed therefore still has every built-in command.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pluggy

from kitt import hookspecs

ENTRY_POINT_GROUP = "kitt"
CORE_DISTRIBUTION = "kitt-core"

DEFAULT_PLUGINS = (
    "kitt._fingerprint.probes",
    "kitt._storage.backends",
    "kitt._cli.inventory",
    "kitt._cli.fingerprint",
    "kitt._cli.run",
    "kitt._cli.engines",
    "kitt._cli.models",
    "kitt._cli.results",
    "kitt._cli.storage",
    "kitt._cli.campaign",
)
"""kitt-core's own plugins, by module; each is named after its last component."""

pm = pluggy.PluginManager("kitt")
pm.add_hookspecs(hookspecs)


@attrs.frozen
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str


@attrs.frozen
class EntryPoint:
    """A `kitt` entry point as found installed (what the scan cache keeps)."""

    name: str
    module: str
    distribution: str
    version: str


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
    """Import and register the built-in plugins, then every `kitt` entry point, once. A
    plugin that fails to import is reported in one line on stderr and skipped."""
    if _loaded or _failures:
        return
    from kitt._util.version import __version__

    for module in DEFAULT_PLUGINS:
        _register(EntryPoint(module.rpartition(".")[2], module, CORE_DISTRIBUTION,
                             __version__))
    wanted = _wanted()
    for entry_point in installed_entry_points():
        if wanted is not None and not {entry_point.name, entry_point.distribution} & wanted:
            continue
        if entry_point.name not in _loaded:
            _register(entry_point)


def _register(entry_point: EntryPoint) -> None:
    try:
        module = importlib.import_module(entry_point.module)
        pm.register(module, name=entry_point.name)
    except Exception as exc:  # a broken plugin must never break kitt
        message = (f"kitt: warning: plugin {entry_point.name!r} from "
                   f"{entry_point.distribution} {entry_point.version} failed to load: "
                   f"{type(exc).__name__}: {exc}")
        _failures.append(message)
        _warn_once(message)
        return
    _loaded[entry_point.name] = PluginInfo(entry_point.name, entry_point.distribution,
                                           entry_point.version, entry_point.module)


# -- finding entry points -----------------------------------------------------------------
# Scanning every installed distribution's metadata costs tens of milliseconds on each
# `kitt` command, `--help` included. The result is cached, keyed by the interpreter and
# the import path, and
# trusted while no folder on that path and no entry_points.txt it names has changed:
# installing, upgrading or removing a distribution rewrites its .dist-info folder, which
# changes its parent folder's modification time.

def installed_entry_points() -> list[EntryPoint]:
    """Every installed `kitt` entry point, in the order importlib.metadata finds them."""
    cache = _cache_path()
    stamps = _path_stamps()
    cached = _read_cache(cache, stamps)
    if cached is not None:
        return cached
    found, files = _scan()
    _write_cache(cache, stamps, found, files)
    return found


def _scan() -> tuple[list[EntryPoint], dict[str, int]]:
    from importlib import metadata

    found: list[EntryPoint] = []
    files: dict[str, int] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        if dist is not None and dist.metadata["Name"] == CORE_DISTRIBUTION:
            continue  # built-ins come from DEFAULT_PLUGINS (an old kitt-core may list them)
        found.append(EntryPoint(entry_point.name, entry_point.value,
                                dist.metadata["Name"] if dist else "unknown",
                                dist.version if dist else "unknown"))
        origin = _entry_points_file(dist)
        if origin is not None:
            files[origin] = _mtime(origin)
    return found, files


def _entry_points_file(dist: Any) -> str | None:
    path = getattr(dist, "_path", None)  # PathDistribution's .dist-info folder
    return str(Path(path) / "entry_points.txt") if path is not None else None


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _path_stamps() -> dict[str, int]:
    return {entry: _mtime(entry or ".") for entry in sys.path}


def _cache_path() -> Path:
    """Under the user's cache folder (XDG_CACHE_HOME, default ~/.cache), never KITT_HOME:
    a command that stores nothing must not create KITT's folder."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    key = hashlib.sha256(json.dumps([sys.executable, sys.path]).encode()).hexdigest()[:16]
    return base / "kitt" / f"entry-points-{key}.json"


def _read_cache(path: Path, stamps: dict[str, int]) -> list[EntryPoint] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["path"] != stamps or any(_mtime(file) != mtime
                                        for file, mtime in doc["files"].items()):
            return None
        return [EntryPoint(**entry) for entry in doc["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, stale or unreadable: scan again


def _write_cache(path: Path, stamps: dict[str, int], found: list[EntryPoint],
                 files: dict[str, int]) -> None:
    from kitt._util.files import write_atomic

    doc = {"path": stamps, "files": files, "entry_points": [attrs.asdict(e) for e in found]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(doc), durable=False)
    except OSError:
        pass  # a read-only home only costs the scan


# -- what plugins register ----------------------------------------------------------------

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
            _warn_once(f"kitt: warning: {hook_name}: {name!r} from plugin {plugin_name!r} "
                       "ignored; another plugin registered that name first")
            continue
        found[name] = item
    return found


class Engines(dict):
    """Installed engines by name, that also answer to their aliases (`Engine.aliases`):
    `engines["llama_cpp"]`, `"llama_cpp" in engines` and `engines.get("llama_cpp")` find
    `llamacpp`; iterating gives each engine once, under its name. An alias that is
    another engine's name, or an alias taken first, is ignored."""

    def __init__(self, by_name: dict[str, Any]) -> None:
        super().__init__(by_name)
        self.aliases: dict[str, str] = {}
        for name, engine in by_name.items():
            for alias in getattr(engine, "aliases", ()):
                if alias not in by_name:
                    self.aliases.setdefault(alias, name)

    def canonical(self, name: str) -> str:
        """The engine's own name for `name` (an alias or a name); `name` if unknown."""
        return self.aliases.get(name, name)

    def __getitem__(self, name: str) -> Any:
        return super().__getitem__(self.canonical(name))

    def __contains__(self, name: object) -> bool:
        return super().__contains__(self.aliases.get(name, name)
                                    if isinstance(name, str) else name)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(self.canonical(name), default)


def engines() -> Engines:
    """Installed engines (`kitt.Engine`) by name, answering to their aliases too."""
    return Engines(registered("register_engines"))


def engine_name(name: str) -> str:
    """The installed engine's own name for `name` (one of its aliases, or itself): what
    KITT stores, so that queries do not split between spellings."""
    return engines().canonical(name)


def benchmarks() -> dict[str, Any]:
    """Installed benchmarks (`kitt.Benchmark`) by name."""
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


def command_group(cli: Any, name: str, help: str) -> Any:
    """The `kitt NAME` group, made with `help` by the first plugin that asks: plugins add
    their subcommands to it in any load order (`kitt test list` from kitt-core, `kitt test
    new` from kitt-bench-quality). `cli` is the group `register_commands` receives."""
    group = cli.commands.get(name)
    if group is None:
        group = cli.group(name=name, help=help)(lambda: None)
    return group
