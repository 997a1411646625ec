"""Plots as inline SVG, drawn by matplotlib without pyplot (no GUI backend, no global
figure state). Only `kitt._report` imports this module, and only while rendering: matplotlib
costs ~0.3 s to import and `kitt --help` must not pay it.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from kitt._report.series import Score, Series

MAX_POINTS = 3000
"""Per scatter series: more points add bytes, not information, to a page people read."""
CDF_POINTS = 400
HIST_BINS = 40
WIDE = (7.2, 3.1)
NARROW = (6.4, 3.3)
"""Inches. A figure fills half a 1280 px page, about 560 px: these sizes keep 10 pt text
readable at that scale."""


@attrs.frozen
class Plot:
    """A drawn figure: `svg` is an <svg> element ready to inline in HTML."""

    key: str
    title: str
    caption: str
    svg: str


def _rc(key: str) -> dict[str, Any]:
    return {
        # Text stays text: smaller pages, crisp at any zoom, fonts from the page's CSS.
        "svg.fonttype": "none",
        # Every figure gets its own id salt: SVGs inlined in one page share an id space,
        # and a clip-path or marker id repeated across figures would draw the wrong shape.
        # Salting with the plot's key (unique in a page) keeps the output deterministic.
        "svg.hashsalt": f"kitt-{key}",
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],  # bundled with matplotlib: same metrics everywhere
        "font.size": 10,
        "axes.titlesize": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.fontsize": 9,
        "legend.frameon": False,
    }


def _label(text: str) -> str:
    # `$` starts mathtext (an unbalanced one raises while drawing) and a leading `_` hides
    # a legend entry: benchmark names are free text.
    text = text.replace("$", r"\$")
    return f" {text}" if text.startswith("_") else text


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    # No bbox_inches="tight" and no constrained layout: each draws the figure once more
    # (a third of the page's render time); fixed margins fit KITT's short labels.
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: invalid inside HTML
    # RDF metadata (creator, links to dublincore.org) is bytes nobody reads in a report.
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.DOTALL)
    # Scale with the page (the viewBox keeps the aspect ratio) instead of fixed points.
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="plot"',
                  text, count=1)


def _draw(key: str, build: Callable[[Any], None], size: tuple[float, float],
          left: float = 0.8, top: float = 0.3) -> str:
    """`left`, `top`: inches of margin for the y tick labels and for titles or legends."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_rc(key)), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs in odd names are not worth a warning
        figure = Figure(figsize=size)
        build(figure)
        width, height = size
        figure.subplots_adjust(left=left / width, right=1 - 0.2 / width, bottom=0.5 / height,
                               top=1 - top / height, wspace=0.25)
        return _svg(figure)


def _thin(x: Sequence[float], y: Sequence[float]) -> tuple[Sequence[float], Sequence[float]]:
    step = max(1, -(-len(y) // MAX_POINTS))
    return x[::step], y[::step]


def distribution(key: str, title: str, axis: str, series: Sequence[Series]) -> Plot | None:
    """An empirical CDF (quantiles, so thousands of samples cost 400 vertices) beside a
    histogram on shared bins."""
    if not series:
        return None
    import numpy as np

    def build(figure: Any) -> None:
        cdf, hist = figure.subplots(1, 2)
        every = np.concatenate([np.asarray(s.y, dtype=float) for s in series])
        low, high = float(every.min()), float(every.max())
        edges = np.linspace(low, high if high > low else low + 1.0, HIST_BINS + 1)
        levels = np.linspace(0.0, 1.0, CDF_POINTS)
        for s in series:
            values = np.asarray(s.y, dtype=float)
            label = _label(f"{s.label} (n={len(values)})")
            cdf.plot(np.quantile(values, levels), levels, label=label)
            hist.hist(values, bins=edges, histtype="step", linewidth=1.4)
        cdf.set(xlabel=axis, ylabel="fraction of requests", title="CDF", ylim=(0, 1.02))
        hist.set(xlabel=axis, ylabel="requests", title="histogram")
        cdf.legend(loc="lower right")

    return Plot(key, title, f"{sum(len(s.y) for s in series)} successful requests.",
                _draw(key, build, WIDE))


def itl_over_time(series: Sequence[Series]) -> Plot | None:
    if not series:
        return None

    def build(figure: Any) -> None:
        ax = figure.subplots()
        for s in series:
            x, y = _thin(s.x, s.y)
            ax.plot(x, y, ".", markersize=2.5, alpha=0.6, label=_label(s.label))
        ax.set(xlabel="request start (s into the measurement window)",
               ylabel="mean inter-token latency (ms)")
        ax.legend(loc="upper right", markerscale=4)

    return Plot("itl", "Inter-token latency over time",
                "One point per successful request: its mean inter-token latency.",
                _draw("itl", build, NARROW))


def throughput_vs_concurrency(series: Sequence[Series]) -> Plot | None:
    if not series:
        return None

    def build(figure: Any) -> None:
        ax = figure.subplots()
        for s in series:
            ax.plot(s.x, s.y, "o-", label=_label(s.label))
        ax.set(xlabel="concurrent requests", ylabel="output tokens/s", ylim=(0, None))
        levels = sorted({x for s in series for x in s.x})
        if levels[0] > 0 and levels[-1] / levels[0] >= 16:  # 1..64 would crowd the left
            ax.set_xscale("log", base=2)
            ax.minorticks_off()
        # Ticks at the measured levels, as plain numbers (log ticks default to mathtext,
        # which costs a parser run per label).
        ax.set_xticks(levels, [f"{x:g}" for x in levels])
        ax.legend(loc="lower right")

    return Plot("throughput", "Throughput vs concurrency",
                "Output tokens per second at each concurrency level (mean over repetitions).",
                _draw("throughput", build, NARROW))


def memory_over_time(series: Sequence[Series]) -> Plot | None:
    if not series:
        return None

    def build(figure: Any) -> None:
        ax = figure.subplots()
        for s in series:
            ax.plot(*_thin(s.x, s.y), label=_label(s.label))
        ax.set(xlabel="time (s)", ylabel="memory (MiB)")
        ax.legend(loc="lower right")

    return Plot("memory", "Memory over time", "Memory use sampled during the benchmark.",
                _draw("memory", build, NARROW))


def quality_scores(scores: Sequence[Score]) -> Plot | None:
    """Horizontal grouped bars (long task names read better on the y axis), one bar per
    run, with 95% confidence intervals from the standard errors."""
    if not scores:
        return None
    names = list(dict.fromkeys(s.name for s in scores))
    runs = list(dict.fromkeys(s.run for s in scores))

    def build(figure: Any) -> None:
        ax = figure.subplots()
        height = 0.8 / len(runs)
        for i, run in enumerate(runs):
            mine = {s.name: s for s in scores if s.run == run}
            rows = [j for j, name in enumerate(names) if name in mine]
            got = [mine[names[j]] for j in rows]
            ax.barh([j + (i - (len(runs) - 1) / 2) * height for j in rows],
                    [s.value for s in got], height=height * 0.9,
                    xerr=[1.96 * s.stderr if s.stderr is not None else 0 for s in got],
                    capsize=3, label=_label(run) if len(runs) > 1 else None)
        ax.set_yticks(range(len(names)), [_label(name) for name in names])
        ax.invert_yaxis()
        ax.set(xlabel="score")
        if len(runs) > 1:  # above the axes: inside, it would cover the longest bars
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.02), borderaxespad=0,
                      ncols=min(len(runs), 4))

    size = (NARROW[0], max(2.0, 0.9 + 0.35 * len(names) * max(1, len(runs)) ** 0.5))
    left = min(3.5, 0.35 + 0.08 * max(len(name) for name in names))
    return Plot("quality", "Quality scores",
                "Bars are scores; whiskers are 95% confidence intervals (1.96 standard errors).",
                _draw("quality", build, size, left, top=0.6 if len(runs) > 1 else 0.3))
