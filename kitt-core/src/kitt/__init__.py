"""KITT: Kirizan's Inference Testing Tools.

This module is the whole public API for plugin authors: the contract (hooks, base classes
and the records KITT keeps) and the helpers plugins share. Everything under `kitt._*` is
internal; plugins import `kitt` and nothing below it (docs/plugins.md).
"""

from kitt import validators
from kitt._engines.conformance import probe_prompt_logprobs
from kitt._engines.docker import docker_client, docker_socket
from kitt._engines.formats import ModelInfo, detect_format
from kitt._engines.streams import (
    Route,
    StreamParser,
    new_parser,
    request_body,
    route_for,
)
from kitt._engines.tokenize import EngineTokenizer, Tokenizer, TokenizerError
from kitt._fingerprint import host_arch, is_blackwell, max_compute_capability, take_fingerprint
from kitt._storage.contract import (
    Cursor,
    Database,
    MetricBound,
    Migration,
    RunFilter,
    StorageBackend,
    Store,
)
from kitt._storage.open import open_store
from kitt._storage.url import resolve_url as resolve_store_url
from kitt._util.files import kitt_home
from kitt._util.version import __version__
from kitt._util.yamlfile import YamlFile, load_yaml, plain
from kitt.benchmark import (
    Benchmark,
    BenchmarkContext,
    Measurement,
    MetricSpec,
    NoParams,
    Progress,
    Target,
)
from kitt.engine import (
    ContainerSpec,
    Engine,
    EngineVersion,
    ImageChoice,
    Launch,
    TokenizeApi,
    binary_digest,
    find_executable,
    find_python,
    option_flags,
)
from kitt.errors import BadInput, EngineFailed, KittError
from kitt.hookspecs import hookimpl
from kitt.plugins import benchmarks as installed_benchmarks
from kitt.plugins import command_group, engine_name
from kitt.plugins import engines as installed_engines
from kitt.probe import Probe, ProbeContext
from kitt.records import (
    BenchmarkResult,
    Direction,
    EngineConfig,
    Fingerprint,
    ItemRecord,
    Metric,
    RequestSample,
    Run,
)

# Loaded on first use: each pulls in modules that `kitt --help` must not pay for.
_LAZY = {
    "Comparison": "kitt._compare.compare",
    "compare_stored": "kitt._compare.compare",
    "Trend": "kitt._compare.trend",
    "trend": "kitt._compare.trend",
    "render_report": "kitt._report",
    "plot_data": "kitt._report.data",
    "benchmark_catalogue": "kitt._run.catalogue",
    "engine_catalogue": "kitt._run.catalogue",
    "headline_metrics": "kitt._run.catalogue",
    "plugin_catalogue": "kitt._run.catalogue",
    "suite_catalogue": "kitt._run.catalogue",
    "export_chunks": "kitt._storage.transfer",
    "from_json": "kitt._util.converter",
    "structure": "kitt._util.converter",
    "to_json": "kitt._util.converter",
    "unstructure": "kitt._util.converter",
    "available_profiles": "kitt._engines.config",
    "check_options": "kitt._engines.preflight",
    "port_problem": "kitt._engines.preflight",
    "load_suite": "kitt._run.suites",
    "Influx": "kitt._storage.influx",
    "influx_lines": "kitt._storage.influx",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kitt' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BadInput",
    "Benchmark",
    "BenchmarkContext",
    "BenchmarkResult",
    "Comparison",
    "ContainerSpec",
    "Cursor",
    "Database",
    "Direction",
    "Engine",
    "EngineConfig",
    "EngineFailed",
    "EngineTokenizer",
    "EngineVersion",
    "Fingerprint",
    "ImageChoice",
    "Influx",
    "ItemRecord",
    "KittError",
    "Launch",
    "Measurement",
    "Metric",
    "MetricBound",
    "MetricSpec",
    "Migration",
    "ModelInfo",
    "NoParams",
    "Probe",
    "ProbeContext",
    "Progress",
    "RequestSample",
    "Route",
    "Run",
    "RunFilter",
    "StorageBackend",
    "Store",
    "StreamParser",
    "Target",
    "TokenizeApi",
    "Tokenizer",
    "TokenizerError",
    "Trend",
    "YamlFile",
    "__version__",
    "available_profiles",
    "benchmark_catalogue",
    "binary_digest",
    "check_options",
    "command_group",
    "compare_stored",
    "detect_format",
    "docker_client",
    "docker_socket",
    "engine_catalogue",
    "engine_name",
    "export_chunks",
    "find_executable",
    "find_python",
    "from_json",
    "headline_metrics",
    "hookimpl",
    "host_arch",
    "influx_lines",
    "installed_benchmarks",
    "installed_engines",
    "is_blackwell",
    "kitt_home",
    "load_suite",
    "load_yaml",
    "max_compute_capability",
    "new_parser",
    "open_store",
    "option_flags",
    "plain",
    "plot_data",
    "plugin_catalogue",
    "port_problem",
    "probe_prompt_logprobs",
    "render_report",
    "request_body",
    "resolve_store_url",
    "route_for",
    "structure",
    "suite_catalogue",
    "take_fingerprint",
    "to_json",
    "trend",
    "unstructure",
    "validators",
]
