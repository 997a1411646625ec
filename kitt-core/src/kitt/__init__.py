"""KITT: Kirizan's Inference Testing Tools.

This module is the whole public API for plugin authors: the contract (hooks, base classes
and the records KITT keeps) and the helpers plugins share. Everything under `kitt._*` is
internal; plugins import `kitt` and nothing below it (docs/plugins.md).
"""

from kitt import validators
from kitt._engines.conformance import probe_prompt_logprobs
from kitt._engines.docker import docker_client
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
from kitt.plugins import command_group
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

__all__ = [
    "BadInput",
    "Benchmark",
    "BenchmarkContext",
    "BenchmarkResult",
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
    "YamlFile",
    "__version__",
    "binary_digest",
    "command_group",
    "detect_format",
    "docker_client",
    "find_executable",
    "find_python",
    "hookimpl",
    "host_arch",
    "is_blackwell",
    "kitt_home",
    "load_yaml",
    "max_compute_capability",
    "new_parser",
    "open_store",
    "option_flags",
    "plain",
    "probe_prompt_logprobs",
    "request_body",
    "route_for",
    "take_fingerprint",
    "validators",
]
