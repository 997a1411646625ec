"""KITT: Kirizan's Inference Testing Tools.

This module is the whole public API for plugin authors; everything else is internal.
"""

from importlib.metadata import PackageNotFoundError, version

from kitt import validators
from kitt.benchmark import Benchmark, BenchmarkContext, Measurement, NoParams, Target
from kitt.engine import ContainerSpec, Engine, ImageChoice, Launch
from kitt.errors import BadInput, EngineFailed, KittError
from kitt.files import kitt_home
from kitt.hookspecs import hookimpl
from kitt.model import (
    BenchmarkResult,
    EngineConfig,
    Fingerprint,
    ItemRecord,
    Metric,
    RequestSample,
    Run,
)
from kitt.probe import Probe, ProbeContext
from kitt.storage.api import Store as Store  # the results store interface
from kitt.store import StorageBackend

try:
    __version__ = version("kitt-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "BadInput",
    "Benchmark",
    "BenchmarkContext",
    "BenchmarkResult",
    "ContainerSpec",
    "Engine",
    "EngineConfig",
    "EngineFailed",
    "Fingerprint",
    "ImageChoice",
    "ItemRecord",
    "KittError",
    "Launch",
    "Measurement",
    "Metric",
    "NoParams",
    "Probe",
    "ProbeContext",
    "RequestSample",
    "Run",
    "StorageBackend",
    "Target",
    "__version__",
    "hookimpl",
    "kitt_home",
    "validators",
]
