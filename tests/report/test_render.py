"""report.html as text: what it contains, what it leaves out, and that it never fails."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from support import subprocess_env
from support.runs import make_run, memory_result, quality_results
from support.strategies import runs as any_runs

from kitt._report import render_report
from kitt._report.format import format_value
from kitt._report.series import (
    memory_over_time,
    quality_scores,
    request_distribution,
    throughput_vs_concurrency,
)
from kitt._util.converter import unstructure
from kitt.records import BenchmarkResult, Metric, RequestSample

ALL_PLOTS = ("e2e", "ttft", "itl", "throughput", "memory", "quality")


def plot_ids(html: str) -> list[str]:
    return re.findall(r'<figure id="plot-(\w+)"', html)


@pytest.fixture(scope="module")
def run():
    return make_run(failed_benchmark=True, requests=400)


@pytest.fixture(scope="module")
def html(run):
    return render_report([run])


def test_single_run_page_has_identity_tables_plots_and_errors(run, html):
    assert html.startswith("<!DOCTYPE html>")
    for text in (run.id, run.model, "llamacpp b4500", "docker", "standard", "failed",
                 run.hardware.fingerprint, "2026-03-01 09:00:00", "14m 07s"):
        assert text in html, text
    assert plot_ids(html) == list(ALL_PLOTS)
    assert html.count("<svg") == len(ALL_PLOTS)
    assert 'class="broken"' not in html
    assert "engine returned HTTP 500 on item 17" in html
    assert "RuntimeError: x" in html  # the traceback, folded
    # every metric value of every repetition is in the tables
    for result in run.results:
        for metric in result.metrics:
            assert f">{format_value(metric.value)}<" in html, (result.name, metric.name)


def test_page_is_self_contained(html):
    without_svg_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", html)
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html
    assert not re.search(r"url\((?!#)", html)  # clip paths refer to ids in the page only
    assert not re.search(r"(src|href)=\"(https?:)?//", without_svg_namespaces)
    assert "http://" not in without_svg_namespaces and "https://" not in without_svg_namespaces
    # no per-request tables: a few thousand requests must not make a huge page
    assert html.count("<tr>") < 200


def test_rendering_is_deterministic(run, html):
    assert render_report([run]) == html


def test_plots_without_data_are_left_out():
    quality_only = attrs.evolve(make_run(requests=10),
                                results=quality_results(1) + quality_results(2))
    assert plot_ids(render_report([quality_only])) == ["quality"]
    nothing = attrs.evolve(make_run(requests=10), results=())
    page = render_report([nothing])
    assert plot_ids(page) == [] and "<h2>Plots</h2>" not in page
    assert "No benchmark results." in page
    failed_requests = attrs.evolve(nothing, results=(BenchmarkResult(
        "throughput", "1", 1, False, requests=(RequestSample(0.0, False, error="refused"),)),))
    assert plot_ids(render_report([failed_requests])) == []


def test_several_runs_are_compared_and_overlaid():
    base = make_run("0123456789ab", requests=300)
    slow = make_run("fedcba987654", requests=300, scale=1.2, quality_delta=-0.1)
    page = render_report([base, slow])
    assert "<h2>Comparison</h2>" in page
    assert plot_ids(page) == list(ALL_PLOTS)
    assert page.count("01234567") >= 3 and page.count("fedcba98") >= 3  # tables and legends
    assert re.search(r'class="num flag critical">\+[^<]*\(\+20\.0%\) <b>critical</b>', page)
    assert 'class="verdict critical"' in page


def test_series_extraction_accepts_the_documented_shapes():
    run = make_run(requests=50)
    sweep = throughput_vs_concurrency([run])
    assert [(s.label, s.x) for s in sweep] == [("concurrency_sweep", (1, 2, 4, 8, 16, 32))]
    by_params = attrs.evolve(run, results=tuple(
        BenchmarkResult("load", "1", rep, True, params={"concurrency": c},
                        metrics=(Metric("output_tokens_per_s", 100.0 * c + rep, "tokens/s"),))
        for c in (1, 4, 16) for rep in (1, 2)))
    (curve,) = throughput_vs_concurrency([by_params])
    assert curve.x == (1, 4, 16) and curve.y == (101.5, 401.5, 1601.5)
    by_name = attrs.evolve(run, results=(BenchmarkResult("sweep", "1", 1, True, metrics=(
        Metric("concurrency_1.output_tokens_per_s", 90.0, "tokens/s"),
        Metric("concurrency_4.output_tokens_per_s", 300.0, "tokens/s"))),))
    assert throughput_vs_concurrency([by_name])[0].y == (90.0, 300.0)
    load_specs = attrs.evolve(run, results=(BenchmarkResult("perf", "1", 1, True, details={
        "levels": {"sequential": {"summary": {"output_tokens_per_s": 50.0}},
                   "c4": {"load": {"profile": {"users": 4, "ramp_up_s": 0.0}},
                          "summary": {"output_tokens_per_s": 150.0,
                                      "request_output_tokens_per_s_mean": 1.0}}}}),))
    (curve,) = throughput_vs_concurrency([load_specs])
    assert (curve.x, curve.y) == ((1.0, 4.0), (50.0, 150.0))

    (memory,) = memory_over_time([run])
    assert memory.x[:2] == (0.0, 0.5) and len(memory.y) == 120
    dicts = attrs.evolve(memory_result(), name="bench", details={
        "gpu_memory": {"gpu0": [{"t_s": 0, "used_mib": 10}, {"t_s": 1, "used_mib": 12}]}})
    (gpu0,) = memory_over_time([attrs.evolve(run, results=(dicts,))])
    assert gpu0.label == "bench gpu0" and gpu0.y == (10.0, 12.0)
    not_memory = attrs.evolve(dicts, details={"series": [[0, 1], [1, 2]]})
    assert memory_over_time([attrs.evolve(run, results=(not_memory,))]) == []

    scores = {(s.name, round(s.value, 4), round(s.stderr, 4)) for s in quality_scores([run])}
    assert ("mmlu/acc", 0.656, 0.012) in scores and ("hellaswag/acc_norm", 0.743, 0.004) in scores
    assert all(not name.endswith(("_stderr", "n_items")) for name, _, _ in scores)
    (e2e,) = request_distribution([run], "e2e_ms")
    assert len(e2e.y) == sum(s.ok for r in run.results for s in r.requests)


def _largest(value: Any) -> float:
    """The largest magnitude of any number inside a run."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return abs(float(value))
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return max((_largest(v) for v in value), default=0.0)
    return 0.0


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(any_runs)
def test_any_run_renders_and_no_plot_breaks(run):
    page = render_report([run])
    assert page.endswith("</html>\n")
    # Numbers near 1e308 overflow matplotlib's axis arithmetic: such a plot becomes a note
    # in the page. Anything a measurement can produce must draw.
    if _largest(unstructure(run)) < 1e100:
        broken = re.findall(r"could not be drawn: <code>(.*?)<", page)
        assert not broken, broken


def test_render_report_needs_a_run():
    with pytest.raises(ValueError):
        render_report([])


def test_a_few_thousand_requests_render_in_under_two_seconds():
    # CPU time of a fresh process (matplotlib's import included): wall time on a shared CI
    # machine measures the neighbours, not the renderer.
    code = (
        "import sys, time\n"
        "from support.runs import make_run\n"
        "run = make_run(requests=1500, repeats=3)\n"
        "start = time.process_time()\n"
        "from kitt._report import render_report\n"
        "html = render_report([run])\n"
        "print(time.process_time() - start, len(html))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120, env=subprocess_env())
    seconds, size = done.stdout.split()
    assert float(seconds) < 2.0, f"{seconds} s of CPU for 4500 requests"
    assert int(size) < 2_000_000


def test_results_folder_gets_the_report(tmp_path, run):
    from kitt._run.results_folder import write_results

    write_results(run, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert plot_ids(page) == list(ALL_PLOTS)


def test_stderr_of_a_pattern_named_score_is_its_whisker_not_a_score():
    from kitt.records import BenchmarkResult, Metric

    gsm8k = BenchmarkResult("gsm8k", "1", 1, True, metrics=(
        Metric("exact_match_strict", 0.25), Metric("exact_match_strict_stderr", 0.05)))
    run = attrs.evolve(make_run(), results=(gsm8k,))
    assert [(s.name, s.value, s.stderr) for s in quality_scores([run])] == [
        ("gsm8k/exact_match_strict", 0.25, 0.05)]
