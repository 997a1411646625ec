"""`report.html`: a self-contained page of tables and plots for one run or several
(docs/reports.md).

Importing this package is cheap; matplotlib and numpy load only inside `render_report`.
"""

from __future__ import annotations

from collections.abc import Sequence

from kitt.compare import Thresholds
from kitt.model import Run

__all__ = ["render_report"]


def render_report(runs: Sequence[Run], *, thresholds: Thresholds | None = None) -> str:
    """The HTML page for `runs`. With several, the first is the baseline they are compared
    against and their plots are overlaid. Plots whose data no run has are left out."""
    if not runs:
        raise ValueError("render_report needs at least one run")
    from kitt.report.page import render

    return render(list(runs), thresholds)
