"""The plugin contract. A KITT plugin is a module, named by an entry point in the `kitt`
group (or by `kitt.plugins.DEFAULT_PLUGINS` for the built-in ones), that implements some
of these hooks with `@kitt.hookimpl`.

Every `register_*` hook receives a `register` callback; call it once per thing the plugin
provides. Plugin modules are imported for every `kitt` command, `kitt --help` included:
import heavy libraries (docker, numpy, aiohttp, lm_eval, torch...) inside functions, never
at module level. Plugins import `kitt` and nothing under it: its top-level names are the
whole API.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("kitt")
hookimpl = pluggy.HookimplMarker("kitt")


@hookspec
def register_engines(register):
    """Register inference engines: `register(engine)` with a `kitt.Engine` instance.

    An engine describes; KITT's runtimes act. It declares its `name`, the model `formats`
    it serves (`gguf`, `safetensors`, `pytorch`, `ollama`), its `modes` (`native`,
    `docker`), `default_port`, `health_path`, `metrics_path`, API flavour `api`
    (`openai`, `ollama`, `tgi`), `Options` (an attrs class) and `tokenize_api`. It
    chooses a container image for a host (`select_image(fingerprint)`), finds its native
    server (`find_native_binary(options)`), builds the native command line
    (`native_command(launch)`) and the container description (`container_spec(launch,
    image)`), says when a health response means ready (`is_healthy(status, body)`) and
    which version is serving (`version(base_url)`). Engines that manage models or share a
    running service also implement `attach(base_url, options)` and `prepare(base_url,
    launch)`. Engine names are unique across all plugins.
    """


@hookspec
def register_benchmarks(register):
    """Register benchmarks: `register(benchmark)` with a `kitt.Benchmark` instance.

    A benchmark has a unique `name`, a `version` (bump it when its numbers change
    meaning), a `category` (`performance`, `quality` or any other word), a `Params`
    attrs class (suite YAML parameters are validated against it before anything starts),
    the `metrics` it can report (`kitt.MetricSpec`: name, unit, direction) and the
    `headline` metric names `kitt run` summarises. `run(context, params)` measures the
    target described by `context` (a `kitt.BenchmarkContext`) and returns a
    `kitt.Measurement`. It raises `kitt.KittError` for failures the user must act on;
    any other exception is recorded as the benchmark's error and the suite goes on.
    """


@hookspec
def register_storage_backends(register):
    """Register result stores: `register(backend)` with a `kitt.StorageBackend`.

    A backend claims URL `schemes` (`sqlite`, `postgresql`...) and opens a store with
    `open(url, create=...)`. `kitt --store URL` and the `KITT_STORE` setting pick a
    backend by the URL's scheme. Stores implement every operation of `kitt.Store`.
    """


@hookspec
def register_fingerprint_probes(register):
    """Register hardware probes: `register(kitt.Probe(name, collect))`.

    `collect(context)` receives a `kitt.ProbeContext` (read files through
    `context.path(...)` so probes can be tested against fixture trees) and returns a
    mapping of JSON values, which appears in the fingerprint's `extra[name]`. The
    built-in probes (`gpu`, `cpu`, `memory`, `storage`, `os`, `environment`) return
    their typed section instead. A probe that raises yields "unknown" and a warning;
    it never stops KITT.
    """


@hookspec
def register_commands(cli):
    """Add commands to the `kitt` click group `cli`: `cli.add_command(command)`, or
    `@cli.command()`. Subcommands of a group several plugins share (`kitt test`,
    `kitt models`) go through `kitt.command_group(cli, name, help)`."""
