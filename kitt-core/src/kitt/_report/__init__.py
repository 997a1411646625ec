"""`report.html`: a self-contained page of tables and plots for one run or several
(docs/reports.md).

`page` lays the page out, `series` pulls what the plots draw out of runs, `plots` draws
them (matplotlib, imported only while drawing), `format` shows numbers, `style` is the
inline stylesheet.
"""

from __future__ import annotations

from collections.abc import Sequence

from kitt._compare.thresholds import Thresholds
from kitt._report.page import render
from kitt.records import Run

__all__ = ["render_report"]


def render_report(runs: Sequence[Run], *, thresholds: Thresholds | None = None) -> str:
    """The HTML page for `runs`. With several, the first is the baseline they are compared
    against and their plots are overlaid. Plots whose data no run has are left out."""
    if not runs:
        raise ValueError("render_report needs at least one run")
    return render(list(runs), thresholds)
