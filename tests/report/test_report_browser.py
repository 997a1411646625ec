"""report.html in a real browser: headless Chromium driven over the DevTools protocol.

Checks what only rendering shows: no console errors, no network requests at all (the page
must open offline), every plot an SVG with a real on-screen size, and the tables holding
the metric values. A screenshot is written beside the page for people to look at.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.browser import open_in_browser
from support.runs import make_run

from kitt._report import render_report
from kitt._report.format import format_value

pytestmark = pytest.mark.slow


def render_in_browser(tmp_path: Path, runs: list) -> dict[str, Any]:
    page = tmp_path / "report.html"
    page.write_text(render_report(runs), encoding="utf-8")
    return open_in_browser(page, tmp_path)


def test_single_run_report_renders_cleanly(tmp_path):
    run = make_run(requests=1500, failed_benchmark=True)
    facts = render_in_browser(tmp_path, [run])
    assert facts["problems"] == []
    assert facts["title"].startswith("KITT report: Qwen2.5-0.5B")
    assert [p["id"] for p in facts["plots"]] == [
        "plot-e2e", "plot-ttft", "plot-itl", "plot-throughput", "plot-memory", "plot-quality"]
    for plot in facts["plots"]:
        width, height = plot["size"]
        assert plot["svgs"] == 1 and width > 300 and height > 100, plot
        assert plot["paths"] > 10, plot  # drawn shapes, not an empty frame
    cells = set(facts["cells"])
    perf = run.results[0]
    for name in ("ttft_ms_p99", "output_tokens_per_s", "e2e_ms_p50"):
        assert format_value(perf.metric(name).value) in cells, name
    assert "engine returned HTTP 500 on item 17" in cells
    assert not facts["overflowX"], "the page scrolls sideways at 1280 px"
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_comparison_report_renders_cleanly(tmp_path):
    base = make_run("0123456789ab", requests=800)
    slow = make_run("fedcba987654", requests=800, scale=1.2)
    facts = render_in_browser(tmp_path, [base, slow])
    assert facts["problems"] == []
    assert len(facts["plots"]) == 6
    assert facts["critical"] > 0
    assert any(cell.endswith("(+20.0%) critical") for cell in facts["cells"])


def test_problems_are_detected(tmp_path):
    """The checker itself: a page that errors and fetches must be caught."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png">'
                    "<script>console.error('boom'); undefinedThing();</script></body></html>")
    found = json.dumps(open_in_browser(page, tmp_path)["problems"])
    assert "console.error" in found and "uncaught" in found and "network request" in found
