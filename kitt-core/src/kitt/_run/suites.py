"""Suites: YAML files naming benchmarks and their parameters (docs/suites.md).

A suite is validated completely — benchmark names, parameter names and types — before
any engine starts, and every error names the file, line and field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from kitt._util.yamlfile import YamlFile, load_yaml, plain
from kitt.errors import BadInput

BUILTIN_DIR = Path(__file__).parent / "suites"
SUITE_KEYS = ("name", "version", "description", "runs", "warmup", "defaults", "benchmarks")
BENCHMARK_KEYS = ("name", "runs", "params")
WARMUP_KEYS = ("requests", "max_tokens")


@attrs.frozen
class Warmup:
    """Requests sent after the engine is healthy and before the first benchmark."""

    requests: int = 3
    max_tokens: int = 16


@attrs.frozen
class PlannedBenchmark:
    """One benchmark of a suite, its parameters validated against its `Params` class."""

    name: str
    benchmark: Any = attrs.field(eq=False, repr=False)
    params: Any
    runs: int


@attrs.frozen
class Suite:
    name: str
    version: str
    description: str
    path: Path
    warmup: Warmup
    benchmarks: tuple[PlannedBenchmark, ...]

    @property
    def total_runs(self) -> int:
        """Benchmark runs the suite makes: each benchmark times its repetitions."""
        return sum(b.runs for b in self.benchmarks)

    def effective_config(self) -> dict[str, Any]:
        """What the run stores: every benchmark with every parameter, defaults included."""
        from kitt._util.converter import unstructure

        return {
            "name": self.name, "version": self.version, "path": str(self.path),
            "warmup": unstructure(self.warmup),
            "benchmarks": [
                {"name": b.name, "runs": b.runs, "params": unstructure(b.params)}
                for b in self.benchmarks
            ],
        }


def suite_dirs() -> list[Path]:
    """Where suite names are looked up: `KITT_SUITES` (os.pathsep list), the user's
    `~/.kitt/suites`, then the suites built into kitt-core."""
    from kitt._util.files import kitt_home

    extra = [Path(p) for p in os.environ.get("KITT_SUITES", "").split(os.pathsep) if p]
    return [*extra, kitt_home() / "suites", BUILTIN_DIR]


def available_suites() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in suite_dirs():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_suite(ref: str) -> Path:
    """A suite by path (anything with a slash or a .yaml suffix) or by name."""
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        return Path(ref)
    suites = available_suites()
    if ref not in suites:
        raise BadInput(f"unknown suite {ref!r}",
                       hint=f"use one of: {', '.join(sorted(suites))}, or a path to a YAML file")
    return suites[ref]


def load_suite(ref: str, benchmarks: Mapping[str, Any], *, runs: int | None = None) -> Suite:
    """Load and validate suite `ref` against the installed `benchmarks` (by name).
    `runs`, when given (e.g. `kitt run --runs`), replaces every repetition count."""
    doc = load_yaml(find_suite(ref), what="suite")
    top = doc.mapping(doc.data, field="suite",
                      hint="a suite is a mapping with name, benchmarks, ...")
    doc.only_keys(top, SUITE_KEYS)
    for required in ("name", "benchmarks"):
        if required not in top:
            raise doc.error(f"missing required key {required!r}", top, field=required,
                            hint="see docs/suites.md for the suite schema")
    suite_runs = runs if runs is not None else _positive_int(doc, top, "runs", default=1)
    defaults = plain(doc.mapping(top.get("defaults"), field="defaults", parent=top,
                                 key="defaults"))
    items = top["benchmarks"]
    if not isinstance(items, list) or not items:
        raise doc.error("expected a non-empty list of benchmarks", top, "benchmarks",
                        field="benchmarks", hint="list entries as `- name: throughput`")
    planned = tuple(
        _plan_benchmark(doc, item, index, benchmarks, defaults, suite_runs, runs is not None)
        for index, item in enumerate(items)
    )
    return Suite(
        name=doc.string(top["name"], field="name", parent=top, key="name"),
        version=str(top.get("version", "1")),
        description=str(top.get("description", "")),
        path=doc.path,
        warmup=_warmup(doc, top),
        benchmarks=planned,
    )


def _plan_benchmark(doc: YamlFile, item: Any, index: int, benchmarks: Mapping[str, Any],
                    defaults: dict[str, Any], suite_runs: int, runs_forced: bool
                    ) -> PlannedBenchmark:
    field = f"benchmarks[{index}]"
    if isinstance(item, str):  # `- throughput` is shorthand for `- name: throughput`
        item = {"name": item}
        node, key = doc.data["benchmarks"], index
    else:
        node, key = item, None
    entry = doc.mapping(item, field=field, parent=doc.data["benchmarks"], key=index)
    doc.only_keys(entry, BENCHMARK_KEYS, field=field)
    name = doc.string(entry.get("name"), field=f"{field}.name", parent=node, key=key)
    if name not in benchmarks:
        raise doc.error(
            f"unknown benchmark {name!r}", node, "name" if key is None else key,
            field=f"{field}.name",
            hint=f"installed benchmarks: {', '.join(sorted(benchmarks)) or 'none'}; "
                 "performance benchmarks come from kitt-bench-perf, quality ones from "
                 "kitt-bench-quality (`kitt test list` shows all)")
    benchmark = benchmarks[name]
    given = doc.mapping(entry.get("params"), field=f"{field}.params", parent=entry,
                        key="params")
    fields = {f.name for f in attrs.fields(benchmark.Params)}
    # Suite-wide defaults apply to each benchmark that has a parameter of that name.
    values = {k: v for k, v in defaults.items() if k in fields} | plain(given)
    params = _structure_params(doc, benchmark, values, given, f"{field}.params")
    bench_runs = suite_runs if runs_forced else _positive_int(doc, entry, "runs",
                                                              default=suite_runs)
    return PlannedBenchmark(name, benchmark, params, bench_runs)


def _structure_params(doc: YamlFile, benchmark: Any, values: dict[str, Any], node: Any,
                      field: str) -> Any:
    import cattrs

    from kitt._util.converter import structure

    names = [f.name for f in attrs.fields(benchmark.Params)]
    for key in values:
        if key not in names:
            raise doc.error(f"unknown parameter {key!r} for benchmark {benchmark.name!r}",
                            node, key, field=f"{field}.{key}",
                            hint=f"its parameters are: {', '.join(names) or 'none'}")
    try:
        return structure(values, benchmark.Params)
    except cattrs.BaseValidationError as exc:
        key, problem = _first_problem(exc)
        raise doc.error(problem, node, key if key in values else None,
                        field=f"{field}.{key}" if key else field,
                        hint=f"see `kitt test list` or docs for {benchmark.name}'s parameters"
                        ) from None
    except (TypeError, ValueError) as exc:  # raised by an attrs validator
        raise doc.error(str(exc), node, field=field,
                        hint=f"check {benchmark.name}'s parameter values") from None


def _first_problem(exc: Exception) -> tuple[str | None, str]:
    """(parameter name, message) of the first failure in a cattrs error tree."""
    import cattrs

    messages = cattrs.transform_error(exc, path="")
    first = messages[0] if messages else str(exc)
    message, _, path = first.partition(" @ ")
    key = path.lstrip(".").split(".")[0].split("[")[0] or None
    return key, message


def _positive_int(doc: YamlFile, node: Mapping, key: str, *, default: int) -> int:
    value = node.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise doc.error(f"expected a whole number >= 1, got {value!r}", node, key, field=key,
                        hint=f"set {key}: 1 or more")
    return value


def _warmup(doc: YamlFile, top: Mapping) -> Warmup:
    node = doc.mapping(top.get("warmup"), field="warmup", parent=top, key="warmup")
    doc.only_keys(node, WARMUP_KEYS, field="warmup")
    values = {}
    for key in WARMUP_KEYS:
        if key in node:
            value = node[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise doc.error(f"expected a whole number >= 0, got {value!r}", node, key,
                                field=f"warmup.{key}")
            values[key] = value
    return Warmup(**values)


def describe_suite(path: Path) -> dict[str, Any]:
    """Name, description and benchmark names, read without validating parameters (so a
    listing works even when a suite's benchmarks are not installed)."""
    try:
        doc = load_yaml(path, what="suite")
        top = doc.data if isinstance(doc.data, Mapping) else {}
        names = [item if isinstance(item, str) else str(item.get("name", "?"))
                 for item in top.get("benchmarks") or [] if isinstance(item, str | Mapping)]
        return {"name": str(top.get("name", path.stem)),
                "description": str(top.get("description", "")),
                "benchmarks": names, "path": str(path)}
    except BadInput as error:
        return {"name": path.stem, "description": f"unreadable: {error.message}",
                "benchmarks": [], "path": str(path)}
