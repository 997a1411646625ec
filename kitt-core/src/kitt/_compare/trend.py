"""One metric over time, and a leaderboard: what the dashboard's trends page shows.

A trend is a series of runs (oldest first), each with its value of one metric (statistics
over the run's repetitions) and judged against the run before it exactly as `kitt results
compare` judges a run against its baseline (`judge`, the same thresholds), so a point
flagged here is one a CI gate comparing those two runs would flag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from kitt._compare.compare import Cell, RunInfo, judge, metric_values
from kitt._compare.statistics import Stats
from kitt._compare.thresholds import Thresholds

if TYPE_CHECKING:
    from kitt._storage.contract import RunFilter, Store

MAX_POINTS = 500


@attrs.frozen
class TrendPoint:
    run: RunInfo
    cell: Cell
    """The run's statistics, and delta and flag against the point before (none for the
    first)."""


@attrs.frozen
class Trend:
    benchmark: str
    metric: str
    unit: str | None
    direction: str
    warn_pct: float
    critical_pct: float
    points: tuple[TrendPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark, "metric": self.metric, "unit": self.unit,
            "direction": self.direction, "warn_pct": self.warn_pct,
            "critical_pct": self.critical_pct,
            "regressions": sum(p.cell.flag in ("warning", "critical") for p in self.points),
            "points": [{
                "run": point.run.to_dict(),
                "stats": attrs.asdict(point.cell.stats) if point.cell.stats else None,
                "delta": point.cell.delta, "delta_pct": point.cell.delta_pct,
                "flag": point.cell.flag,
            } for point in self.points],
        }


def trend(store: Store, where: RunFilter, benchmark: str, metric: str, *,
          limit: int = MAX_POINTS, thresholds: Thresholds | None = None) -> Trend:
    """`metric` of `benchmark` (a comparison label: the name, or `name [k=v]` for one of
    several parameter sets) over the newest `limit` matching runs; those that do not report
    it are left out."""
    thresholds = thresholds or Thresholds()
    summaries = store.list_runs(where, limit=limit)[::-1]
    stored = store.comparison_values([s.id for s in summaries]) if summaries else []
    found: list[tuple[RunInfo, Stats, str | None]] = []
    unit = None
    for entry in stored:
        for (label, name, metric_unit), values in metric_values(entry.results).items():
            if label == benchmark and name == metric and values.values:
                found.append((RunInfo.of_summary(entry.run), Stats.of(values.values),
                              values.direction))
                unit = unit or metric_unit
                break
    stated = next((d for _, _, d in reversed(found) if d is not None), "neutral")
    threshold = thresholds.for_metric(benchmark, metric, stated)
    points, previous = [], None
    for info, stats, _ in found:
        cell = Cell(stats) if previous is None else judge(previous, stats, threshold)
        points.append(TrendPoint(info, cell))
        previous = stats
    return Trend(benchmark, metric, unit, threshold.direction, threshold.warn_pct,
                 threshold.critical_pct, tuple(points))
