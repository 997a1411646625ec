"""What is installed, described as data: benchmarks (parameters, metrics), suites
(validated against the installed benchmarks), engines (what they can do on this host) and
plugins. `kitt test show`, `kitt engines list` and the web's catalogue read it here."""

from __future__ import annotations

from typing import Any

import attrs

from kitt import plugins
from kitt._run.suites import available_suites, describe_suite, load_suite
from kitt.errors import BadInput


def headline_metrics(result: Any) -> list:
    """The metrics of `result` (a `BenchmarkResult`, or anything with `name` and
    `metrics`) that its benchmark names as its headline, or all of them when it names
    none of them: what `kitt run` prints and kitt-web's /metrics exports."""
    benchmark = plugins.benchmarks().get(result.name)
    wanted = benchmark.headline if benchmark is not None else ()
    chosen = [m for m in result.metrics if m.name in wanted]
    return chosen or list(result.metrics)


def describe_benchmark(benchmark: Any, *, full: bool = False) -> dict[str, Any]:
    """Name, category, version, description, source, validity; with `full`, also its
    parameters (with defaults), metrics and headline."""
    out = {"name": benchmark.name, "category": benchmark.category,
           "version": str(benchmark.version), "description": benchmark.description,
           "source": str(benchmark.source) if benchmark.source else None,
           "valid": benchmark.problem is None, "problem": benchmark.problem}
    if full:
        out["params"] = [{"name": f.name, "default": _default(f.default),
                          "type": _type_name(f.type)} for f in attrs.fields(benchmark.Params)]
        out["metrics"] = [{"name": m.name, "unit": m.unit, "direction": m.direction,
                           "description": m.description} for m in benchmark.metrics]
        out["headline"] = list(benchmark.headline)
    return out


def _default(value: Any) -> Any:
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        return value.factory()
    return value if value is not attrs.NOTHING else None


def _type_name(kind: Any) -> str:
    return kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))


def benchmark_catalogue() -> list[dict[str, Any]]:
    """Every installed benchmark, fully described, with the plugin that registered it."""
    rows = [{**describe_benchmark(benchmark, full=True), "plugin": plugin_name}
            for plugin_name, benchmark in plugins.collect("register_benchmarks")]
    return sorted(rows, key=lambda row: (row["category"], row["name"]))


def suite_catalogue() -> list[dict[str, Any]]:
    """Every suite KITT finds, validated against the installed benchmarks: `valid`, and
    the first `problem` (with its file and line) when not."""
    benchmarks = plugins.benchmarks()
    rows = []
    for name, path in sorted(available_suites().items()):
        row = {**describe_suite(path), "name": name}
        try:
            suite = load_suite(str(path), benchmarks)
            row.update(valid=True, problem=None, runs=[b.runs for b in suite.benchmarks])
        except BadInput as error:
            row.update(valid=False, problem=str(error), runs=[])
        rows.append(row)
    return rows


def engine_catalogue(host: Any = None) -> list[dict[str, Any]]:
    """Every installed engine with what it can do on `host` (default: this machine);
    Docker is asked about images only when it answers."""
    from kitt._engines.status import docker_or_reason, engine_status
    from kitt._fingerprint import host_fingerprint

    engines = plugins.engines()
    client, docker_error = docker_or_reason() if any(
        "docker" in e.modes for e in engines.values()) else (None, "not needed")
    host = host or host_fingerprint()
    return [engine_status(engine, client=client, docker_error=docker_error, host=host)
            for _, engine in sorted(engines.items())]


def plugin_catalogue() -> list[dict[str, Any]]:
    return [attrs.asdict(info) for info in plugins.loaded_plugins()]
