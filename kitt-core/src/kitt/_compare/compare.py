"""Comparing runs: each run's metrics over its repetitions side by side, deltas against a
baseline run, and regression flags (docs/reports.md).

This is KITT's one comparison implementation: `kitt results compare` (= `kitt storage
compare`) and `kitt report` all compute here, so a number printed in a terminal and the
same number in a report can never disagree. What it needs of a run is a `RunValues`: the
run's identity and each metric's values over its repetitions. One comes from a whole
`Run` (a results folder, or a report that draws the run anyway) or from the store's
`comparison_values` (a few indexed rows per run instead of documents that hold every
request sample); both go through `metric_values`, so they key results identically.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from kitt._compare.statistics import Stats, finite
from kitt._compare.thresholds import Threshold, Thresholds
from kitt.errors import BadInput
from kitt.records import Direction, Metric, Run

if TYPE_CHECKING:
    from kitt._storage.contract import RunMetrics, RunSummary, Store

Flag = Literal["ok", "warning", "critical", "missing"]
_FLAG_RANK = {None: 0, "ok": 1, "missing": 2, "warning": 3, "critical": 4}


class ResultLike(Protocol):
    """What comparing reads of a benchmark result: a `kitt.BenchmarkResult`, or the store's
    compact `ResultMetrics`."""

    @property
    def name(self) -> str: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def metrics(self) -> Sequence[Metric]: ...


def result_keys(results: Sequence[ResultLike]) -> list[str]:
    """A label per result naming its benchmark: the name, plus the parameters that differ
    when one run holds the same benchmark with several parameter sets (a sweep written as
    separate suite entries), so those never pool as if they were repetitions."""
    by_name: dict[str, list[dict[str, str]]] = {}
    flat = [_flat_params(result.params) for result in results]
    for result, params in zip(results, flat, strict=True):
        by_name.setdefault(result.name, []).append(params)
    labels = []
    for result, params in zip(results, flat, strict=True):
        siblings = by_name[result.name]
        varying = sorted({key for other in siblings for key in {*other, *params}
                          if other.get(key) != params.get(key)})
        shown = ", ".join(f"{key}={params[key]}" for key in varying if key in params)
        labels.append(f"{result.name} [{shown}]" if shown else result.name)
    return labels


def _flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat_params(value, f"{name}."))
        else:
            out[name] = json.dumps(value, sort_keys=True, allow_nan=True)
    return out


MetricKey = tuple[str, str, str]
"""(benchmark label, metric name, unit)."""


@attrs.frozen
class MetricValues:
    """One run's values of one metric over its repetitions, and the direction the run
    states for it (None: not stated)."""

    values: list[float]
    direction: Direction | None = None


def metric_values(results: Sequence[ResultLike]) -> dict[MetricKey, MetricValues]:
    """Every metric of a run's `results` with its values over the repetitions, in the
    run's order. Failed repetitions count when they report a metric, as in the store's
    statistics. Results without metrics matter too: their parameters can tell siblings
    apart (`result_keys`).

    A metric stored without a direction (runs from before KITT recorded directions) takes
    the one its benchmark declares, when that benchmark is installed."""
    out: dict[MetricKey, MetricValues] = {}
    for result, key in zip(results, result_keys(results), strict=True):
        for metric in result.metrics:
            if not math.isfinite(metric.value):
                continue
            found = out.setdefault((key, metric.name, metric.unit), MetricValues([]))
            found.values.append(metric.value)
            if found.direction is None:
                direction = metric.direction or declared_direction(result.name, metric.name)
                out[key, metric.name, metric.unit] = attrs.evolve(found, direction=direction)
    return out


def declared_direction(benchmark: str, metric: str) -> Direction | None:
    """The direction the installed benchmark `benchmark` declares for `metric`."""
    found = _benchmarks().get(benchmark)
    spec = found.metric_spec(metric) if found is not None else None
    return spec.direction if spec is not None else None


@functools.cache
def _benchmarks() -> dict[str, Any]:
    from kitt import plugins

    return plugins.benchmarks()


# -- comparison -----------------------------------------------------------------------------------

@attrs.frozen
class Cell:
    """One run's value of one metric. The baseline's cell has no delta and no flag."""

    stats: Stats | None
    delta: float | None = None
    delta_pct: float | None = None
    flag: Flag | None = None


@attrs.frozen
class Row:
    """One metric across the runs. `threshold.direction` is the direction it is judged
    by: a thresholds rule's, else what the runs state (the latest run that states one),
    else neutral."""

    benchmark: str
    metric: str
    unit: str
    threshold: Threshold
    cells: tuple[Cell, ...]

    @property
    def flag(self) -> Flag | None:
        return max((cell.flag for cell in self.cells), key=_FLAG_RANK.__getitem__)


@attrs.frozen
class RunInfo:
    """Who a compared run is, as the comparison prints it."""

    id: str
    model: str
    engine: str
    engine_version: str | None
    mode: str
    suite: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    fingerprint: str

    @classmethod
    def of_run(cls, run: Run) -> RunInfo:
        return cls(run.id, run.model, run.engine.engine, run.engine_version, run.engine.mode,
                   run.suite, run.status, run.started_at, run.finished_at,
                   run.hardware.fingerprint)

    @classmethod
    def of_summary(cls, summary: RunSummary) -> RunInfo:
        return cls(summary.id, summary.model, summary.engine, summary.engine_version,
                   summary.mode, summary.suite, summary.status, summary.started_at,
                   summary.finished_at, summary.fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model": self.model, "engine": self.engine,
            "engine_version": self.engine_version, "mode": self.mode, "suite": self.suite,
            "status": self.status, "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "fingerprint": self.fingerprint,
        }


@attrs.frozen
class RunValues:
    """What comparing needs of one run: who it is, and every metric's values over the
    run's repetitions (`metric_values`)."""

    info: RunInfo
    values: dict[MetricKey, MetricValues] = attrs.field(repr=False)

    @classmethod
    def of_run(cls, run: Run) -> RunValues:
        return cls(RunInfo.of_run(run), metric_values(run.results))

    @classmethod
    def of_stored(cls, stored: RunMetrics) -> RunValues:
        return cls(RunInfo.of_summary(stored.run), metric_values(stored.results))


@attrs.frozen
class Comparison:
    """Runs side by side; `runs[0]` is the baseline."""

    runs: tuple[RunInfo, ...] = attrs.field(repr=False)
    rows: tuple[Row, ...]

    def flagged(self, *flags: Flag) -> list[tuple[Row, int]]:
        """(row, run index) of every cell carrying one of `flags`."""
        return [(row, i) for row in self.rows for i, cell in enumerate(row.cells)
                if cell.flag in flags]

    @property
    def critical(self) -> bool:
        return bool(self.flagged("critical"))

    def counts(self) -> dict[str, int]:
        return {flag: len(self.flagged(flag)) for flag in ("critical", "warning", "missing")}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `kitt results compare --json` prints."""
        return {
            "baseline": self.runs[0].id,
            "runs": [run.to_dict() for run in self.runs],
            "regressions": self.counts(),
            "rows": [{
                "benchmark": row.benchmark, "metric": row.metric, "unit": row.unit,
                "direction": row.threshold.direction, "warn_pct": row.threshold.warn_pct,
                "critical_pct": row.threshold.critical_pct, "flag": row.flag,
                "values": [{"run": run.id, **_cell_dict(cell)}
                           for run, cell in zip(self.runs, row.cells, strict=True)],
            } for row in self.rows],
        }


def _cell_dict(cell: Cell) -> dict[str, Any]:
    stats = attrs.asdict(cell.stats) if cell.stats else None
    return {"stats": stats, "delta": cell.delta, "delta_pct": cell.delta_pct, "flag": cell.flag}


def compare(runs: Sequence[RunValues], thresholds: Thresholds | None = None) -> Comparison:
    """Every metric of `runs` side by side, each later run against `runs[0]`."""
    if not runs:
        raise BadInput("nothing to compare", hint="name at least one run")
    thresholds = thresholds or Thresholds()
    per_run = [run.values for run in runs]
    keys = list(dict.fromkeys(key for values in per_run for key in values))
    rows = []
    for key in keys:
        benchmark, metric, unit = key
        stated = [values[key].direction for values in per_run if key in values]
        direction = next((d for d in reversed(stated) if d is not None), "neutral")
        threshold = thresholds.for_metric(benchmark, metric, direction)
        stats = [Stats.of(values[key].values) if key in values else None
                 for values in per_run]
        base = stats[0]
        cells = [Cell(base)]
        cells += [judge(base, other, threshold) for other in stats[1:]]
        rows.append(Row(benchmark, metric, unit, threshold, tuple(cells)))
    return Comparison(tuple(run.info for run in runs), tuple(rows))


def compare_runs(runs: Sequence[Run], thresholds: Thresholds | None = None) -> Comparison:
    """`compare` of whole runs (results folders, or runs a report draws anyway)."""
    return compare([RunValues.of_run(run) for run in runs], thresholds)


def compare_stored(store: Store, refs: Sequence[str],
                   thresholds: Thresholds | None = None) -> Comparison:
    """`compare` of stored runs (ids or unique prefixes), read without their documents."""
    return compare([RunValues.of_stored(found) for found in store.comparison_values(refs)],
                   thresholds)


def judge(base: Stats | None, other: Stats | None, threshold: Threshold) -> Cell:
    """`other` against the baseline: its delta and flag.

    The percent change is relative to |baseline mean|. A bad move away from a zero
    baseline (errors appearing where there were none) is an unbounded change: critical.
    A metric the baseline has and this run lacks is `missing`; one only this run has is
    simply shown.
    """
    if other is None:
        return Cell(None, flag="missing" if base is not None else None)
    if base is None:
        return Cell(other)
    delta = other.mean - base.mean
    if not math.isfinite(delta):  # means near ±1e308: no honest difference to show
        return Cell(other)
    pct = finite(100.0 * delta / abs(base.mean)) if base.mean != 0 else None
    if threshold.direction == "neutral":
        return Cell(other, delta, pct, "ok")
    worse = delta if threshold.direction == "lower" else -delta
    if worse <= 0:
        flag: Flag = "ok"
    elif pct is None:
        flag = "critical"
    else:  # a threshold of 0 flags any worsening at all
        worse_pct = abs(pct)
        flag = ("critical" if worse_pct >= threshold.critical_pct
                else "warning" if worse_pct >= threshold.warn_pct else "ok")
    return Cell(other, delta, pct, flag)
