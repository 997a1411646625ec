"""What the report plots, pulled out of runs without judging them: every extractor returns
an empty list when its data is absent or malformed, so a plot is omitted, never an error.

Benchmarks write `details` freely (only JSON), so the shapes accepted here are generous and
documented in docs/reports.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from kitt._compare.compare import result_keys
from kitt.records import BenchmarkResult, Run


@attrs.frozen
class Series:
    """One line or point cloud of a plot. `x` is empty for distributions (values in `y`)."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]


@attrs.frozen
class Score:
    """A quality score of one run; `stderr` None when the benchmark gave none."""

    run: str
    name: str
    value: float
    stderr: float | None


def run_label(run: Run, runs: Sequence[Run]) -> str:
    """How a run is named in legends: its short id, plus the engine when that tells runs
    apart."""
    short = run.id[:8] or "(no id)"
    engines = {r.engine.engine for r in runs}
    return f"{short} {run.engine.engine}" if len(engines) > 1 else short


def _grouped(runs: Sequence[Run]) -> Iterator[tuple[str, list[BenchmarkResult]]]:
    """(legend label, results) per run and benchmark: repetitions pool together."""
    for run in runs:
        groups: dict[str, list[BenchmarkResult]] = {}
        for result, key in zip(run.results, result_keys(run.results), strict=True):
            groups.setdefault(key, []).append(result)
        for key, results in groups.items():
            label = key if len(runs) == 1 else f"{run_label(run, runs)} · {key}"
            yield label, results


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# -- per-request samples -------------------------------------------------------------------

def request_distribution(runs: Sequence[Run], field: str) -> list[Series]:
    """Values of `field` (`e2e_ms`, `ttft_ms`) over the successful requests."""
    out = []
    for label, results in _grouped(runs):
        values = tuple(v for r in results for s in r.requests if s.ok
                       and (v := _finite(getattr(s, field))) is not None)
        if values:
            out.append(Series(label, (), values))
    return out


def itl_over_time(runs: Sequence[Run]) -> list[Series]:
    """Each request's mean inter-token latency (ms) against its start (s into the window)."""
    out = []
    for label, results in _grouped(runs):
        points = [(start / 1000.0, itl) for r in results for s in r.requests
                  if s.ok and (itl := _finite(s.itl_mean_ms)) is not None
                  and (start := _finite(s.start_ms)) is not None]
        if points:
            points.sort()
            out.append(Series(label, tuple(p[0] for p in points), tuple(p[1] for p in points)))
    return out


# -- throughput against concurrency --------------------------------------------------------

_SWEEP_KEYS = ("sweep", "levels", "loads", "points", "concurrency_sweep", "results")
_CONCURRENCY_TEXT = re.compile(r"concurrency[-_=: ]?(\d+)")
_METRIC_AT_LEVEL = re.compile(r"^(?:concurrency|c)[-_=]?(\d+)[./:_-]+(\w*tokens_per_s)$")
_THROUGHPUT_NAMES = ("output_tokens_per_s", "tokens_per_s", "total_tokens_per_s")


def _concurrency(obj: Any) -> float | None:
    """A concurrency level from a mapping (`concurrency`, `users`, `max_concurrency`, or a
    nested `load`/`profile`), or from a load name such as `concurrency-8` or
    `sequential`."""
    if isinstance(obj, str):
        if obj == "sequential":  # kitt-bench-perf's name for one request at a time
            return 1.0
        match = _CONCURRENCY_TEXT.search(obj)
        return float(match.group(1)) if match else None
    if not isinstance(obj, Mapping):
        return None
    for key in ("concurrency", "users", "max_concurrency"):
        value = _finite(obj.get(key))
        if value is not None and value > 0:
            return value
    for key in ("load", "profile", "name"):
        value = _concurrency(obj.get(key))
        if value is not None:
            return value
    return None


def _throughput(obj: Any, depth: int = 0) -> float | None:
    """Output tokens/s from a mapping: the preferred names first, then any `*tokens_per_s*`
    key that is not a per-request statistic; nested `summary`/`metrics` are searched too."""
    if not isinstance(obj, Mapping) or depth > 2:
        return None
    for name in _THROUGHPUT_NAMES:
        value = _finite(obj.get(name))
        if value is not None:
            return value
    for key, value in obj.items():
        if isinstance(key, str) and "tokens_per_s" in key and not key.startswith("request"):
            number = _finite(value)
            if number is not None:
                return number
    for key in ("summary", "metrics"):
        nested = obj.get(key)
        if isinstance(nested, list):  # [{"name": ..., "value": ...}] as Metric unstructures
            nested = {m.get("name"): m.get("value") for m in nested if isinstance(m, Mapping)}
        value = _throughput(nested, depth + 1)
        if value is not None:
            return value
    return None


def _metric_throughput(result: BenchmarkResult) -> float | None:
    names = {m.name: m.value for m in result.metrics}
    return _throughput(names)


def _sweep_in_details(details: Mapping[str, Any]) -> list[tuple[float, float]]:
    points = []
    for key in _SWEEP_KEYS:
        entries = details.get(key)
        if isinstance(entries, Mapping):  # {"concurrency-8": {...}}
            entries = [{"name": name, **value} for name, value in entries.items()
                       if isinstance(value, Mapping)]
        if not isinstance(entries, list):
            continue
        for entry in entries:
            level, value = _concurrency(entry), _throughput(entry)
            if level is not None and value is not None:
                points.append((level, value))
    return points


def throughput_vs_concurrency(runs: Sequence[Run]) -> list[Series]:
    """(concurrency, output tokens/s) per run and benchmark, from whichever form the
    benchmark has: a sweep in its `details`, metrics named per level
    (`concurrency_8.output_tokens_per_s`), or one result per level with a `concurrency`
    parameter. Benchmarks never mix (a fixed-concurrency throughput test is not a point of
    a sweep). Levels repeated across repetitions are averaged; a benchmark with fewer than
    two levels has no curve."""
    out = []
    for run in runs:
        by_name: dict[str, dict[float, list[float]]] = {}
        for result in run.results:
            found = _sweep_in_details(result.details)
            for metric in result.metrics:
                match = _METRIC_AT_LEVEL.match(metric.name)
                if match and _finite(metric.value) is not None:
                    found.append((float(match.group(1)), metric.value))
            if not found:
                level, value = _concurrency(result.params), _metric_throughput(result)
                if level is not None and value is not None:
                    found.append((level, value))
            for level, value in found:
                by_name.setdefault(result.name, {}).setdefault(level, []).append(value)
        curves = {name: levels for name, levels in by_name.items() if len(levels) >= 2}
        for name, by_level in curves.items():
            label = run_label(run, runs) if len(runs) > 1 else ""
            if len(curves) > 1 or not label:
                label = f"{label} · {name}" if label else name
            levels = sorted(by_level)
            out.append(Series(label, tuple(levels),
                              tuple(sum(by_level[c]) / len(by_level[c]) for c in levels)))
    return out


# -- memory over time ------------------------------------------------------------------------

_MEMORY_UNITS = {"mib", "mb", "gib", "gb"}


def _pairs(value: Any) -> list[tuple[float, float]]:
    """[[t, v], ...] or [{"t_s": t, "mib": v}, ...] as (t, v) pairs; [] for anything else."""
    if not isinstance(value, list):
        return []
    pairs = []
    for point in value:
        if isinstance(point, list | tuple) and len(point) >= 2:
            t, v = _finite(point[0]), _finite(point[1])
        elif isinstance(point, Mapping):
            t = next((_finite(point[k]) for k in ("t_s", "t", "time_s", "time") if k in point),
                     None)
            v = next((_finite(point[k]) for k in point
                      if isinstance(k, str) and k not in ("t_s", "t", "time_s", "time")
                      and _finite(point[k]) is not None), None)
        else:
            return []
        if t is None or v is None:
            return []
        pairs.append((t, v))
    return pairs


def _memory_in_details(result: BenchmarkResult) -> Iterator[tuple[str, list[tuple[float, float]]]]:
    """(series name, points): keys mentioning memory, and a plain `series` key when the
    benchmark is a memory one (its name says so, or `details.unit` is a memory unit)."""
    details = result.details
    unit = details.get("unit")
    memory_benchmark = "mem" in result.name.lower() or (
        isinstance(unit, str) and unit.lower() in _MEMORY_UNITS)
    for key, value in details.items():
        if not ("mem" in key.lower() or (key == "series" and memory_benchmark)):
            continue
        if isinstance(value, Mapping):
            if "series" in value:  # {"memory": {"series": [...], "unit": "MiB"}}
                yield "", _pairs(value["series"])
            else:  # {"memory_series": {"gpu0": [...], "gpu1": [...]}}
                for name, points in value.items():
                    yield str(name), _pairs(points)
        else:
            yield "", _pairs(value)


def memory_over_time(runs: Sequence[Run]) -> list[Series]:
    out = []
    for label, results in _grouped(runs):
        for result in results:
            for name, points in _memory_in_details(result):
                if len(points) < 2:
                    continue
                suffix = f" {name}" if name else ""
                reps = f" (run {result.run_number})" if len(results) > 1 else ""
                out.append(Series(f"{label}{suffix}{reps}", tuple(p[0] for p in points),
                                  tuple(p[1] for p in points)))
    return out


# -- quality scores ---------------------------------------------------------------------------

_QUALITY_NAME = re.compile(r"^(acc|acc_norm|accuracy|exact_match\w*|em|f1|mc1|mc2|pass@\d+)$")


def quality_scores(runs: Sequence[Run]) -> list[Score]:
    """Each metric that has a `<name>_stderr` sibling, or is a well-known quality score,
    averaged over repetitions (the stderr too), per run and benchmark."""
    out = []
    for run in runs:
        for key, results in _grouped([run]):
            values: dict[str, list[float]] = {}
            stderrs: dict[str, list[float]] = {}
            for result in results:
                by_name = {m.name: m.value for m in result.metrics
                           if _finite(m.value) is not None}
                for name, value in by_name.items():
                    if name.endswith("_stderr"):  # a whisker of its score, never a score
                        continue
                    if f"{name}_stderr" in by_name or _QUALITY_NAME.match(name):
                        values.setdefault(name, []).append(value)
                        stderr = by_name.get(f"{name}_stderr")
                        if stderr is not None and stderr >= 0:  # a negative one is no interval
                            stderrs.setdefault(name, []).append(stderr)
            for name, got in values.items():
                errs = stderrs.get(name)
                out.append(Score(run_label(run, runs), f"{key}/{name}", sum(got) / len(got),
                                 sum(errs) / len(errs) if errs else None))
    return out
