"""The report's plots as data, for pages that draw them in the browser (kitt-web's run
and compare pages): the same extractors as report.html (`series`), reduced to what a
chart needs, as JSON-ready values.

Distributions become an empirical CDF (the values at CDF_POINTS evenly spaced quantiles)
and a histogram on bins shared by every series of the plot; point clouds are thinned to
MAX_POINTS per series; so a run of 100,000 requests is a few kilobytes to send.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kitt._report import series as extract
from kitt._report.plots import CDF_POINTS, HIST_BINS, MAX_POINTS
from kitt.records import Run


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _distribution(found: Sequence[extract.Series]) -> dict[str, Any] | None:
    if not found:
        return None
    every = [v for s in found for v in s.y]
    low, high = min(every), max(every)
    high = high if high > low else low + 1.0
    width = (high - low) / HIST_BINS
    edges = [low + i * width for i in range(HIST_BINS + 1)]
    levels = [i / (CDF_POINTS - 1) for i in range(CDF_POINTS)]
    out = []
    for s in found:
        ordered = sorted(s.y)
        counts = [0] * HIST_BINS
        for value in s.y:
            counts[min(int((value - low) / width), HIST_BINS - 1)] += 1
        out.append({"label": s.label, "n": len(ordered),
                    "cdf": {"x": [_quantile(ordered, q) for q in levels], "y": levels},
                    "histogram": counts})
    return {"edges": edges, "series": out}


def _thin(s: extract.Series) -> dict[str, Any]:
    step = max(1, math.ceil(len(s.x) / MAX_POINTS))
    return {"label": s.label, "x": list(s.x[::step]), "y": list(s.y[::step]),
            "n": len(s.x)}


def _subjects(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Accuracy per subject of each quality result that recorded items with subjects."""
    out = []
    for run in runs:
        label = extract.run_label(run, runs)
        per: dict[tuple[str, str], list[bool]] = {}
        for result in run.results:
            for item in result.items:
                if item.subject:
                    per.setdefault((result.name, item.subject), []).append(item.correct)
        for (benchmark, subject), marks in sorted(per.items()):
            out.append({"run": label, "benchmark": benchmark, "subject": subject,
                        "n": len(marks), "accuracy": sum(marks) / len(marks)})
    return out


def plot_data(runs: Sequence[Run]) -> dict[str, Any]:
    """Every plot report.html would draw for `runs`, as data; a plot with no data is
    None (or an empty list)."""
    runs = list(runs)
    return {
        "e2e": _distribution(extract.request_distribution(runs, "e2e_ms")),
        "ttft": _distribution(extract.request_distribution(runs, "ttft_ms")),
        "itl": [_thin(s) for s in extract.itl_over_time(runs)],
        "throughput": [_thin(s) for s in extract.throughput_vs_concurrency(runs)],
        "memory": [_thin(s) for s in extract.memory_over_time(runs)],
        "quality": [{"run": s.run, "name": s.name, "value": s.value, "stderr": s.stderr}
                    for s in extract.quality_scores(runs)],
        "subjects": _subjects(runs),
    }
