"""The comparison math: statistics over repetitions, deltas, direction and flags."""

from __future__ import annotations

import json
import math
import statistics

import attrs
import pytest
from support.runs import make_run

from kitt._compare.compare import compare_runs, judge, metric_values, result_keys
from kitt._compare.statistics import Stats
from kitt._compare.thresholds import Rule, Threshold, Thresholds
from kitt.errors import BadInput
from kitt.records import BenchmarkResult, Metric


def test_stats_match_the_statistics_module():
    values = [101.0, 98.5, 103.25, 99.0]
    stats = Stats.of(values)
    assert stats.n == 4
    assert stats.mean == pytest.approx(statistics.fmean(values))
    assert stats.stddev == pytest.approx(statistics.stdev(values))
    assert stats.cv == pytest.approx(statistics.stdev(values) / statistics.fmean(values))
    assert (stats.min, stats.max) == (98.5, 103.25)


def test_stats_of_one_value_and_of_a_zero_mean():
    one = Stats.of([7.0])
    assert (one.n, one.mean, one.stddev, one.cv) == (1, 7.0, None, None)
    zero = Stats.of([-1.0, 1.0])
    assert zero.stddev == pytest.approx(math.sqrt(2)) and zero.cv is None


def _run_with(run_id: str, *metrics: Metric, name: str = "throughput"):
    return attrs.evolve(make_run(run_id, requests=10), results=(
        BenchmarkResult(name, "1", 1, True, metrics=metrics),))


def test_the_direction_is_the_one_the_benchmark_stated():
    # `window_s` is a duration (unit s), yet its benchmark says neutral: never flagged,
    # whatever a name or unit would suggest. Directions are read, never guessed.
    base = _run_with("base", Metric("window_s", 10.0, "s", "neutral"),
                     Metric("odd_name", 10.0, "widgets", "lower"))
    worse = _run_with("worse", Metric("window_s", 20.0, "s", "neutral"),
                      Metric("odd_name", 20.0, "widgets", "lower"))
    rows = {row.metric: row for row in compare_runs([base, worse]).rows}
    assert rows["window_s"].threshold.direction == "neutral"
    assert rows["window_s"].flag == "ok"
    assert rows["odd_name"].threshold.direction == "lower"
    assert rows["odd_name"].flag == "critical"


def test_runs_stored_without_directions_take_the_installed_benchmarks():
    # Runs from before directions were recorded: the installed benchmark's declaration
    # of the metric decides; a metric nobody declares is neutral.
    legacy = [_run_with(run_id, Metric("ttft_ms_p99", value, "ms"),
                        Metric("my_score", value, ""))
              for run_id, value in (("old", 10.0), ("new", 20.0))]
    rows = {row.metric: row for row in compare_runs(legacy).rows}
    assert rows["ttft_ms_p99"].threshold.direction == "lower"
    assert rows["ttft_ms_p99"].flag == "critical"
    assert rows["my_score"].threshold.direction == "neutral"
    assert rows["my_score"].flag == "ok"


def test_a_direction_stated_by_any_run_applies_to_the_row():
    old = _run_with("old", Metric("my_score", 0.5, ""))  # stored before directions
    new = _run_with("new", Metric("my_score", 0.4, "", "higher"))
    row = compare_runs([old, new]).rows[0]
    assert row.threshold.direction == "higher" and row.flag == "critical"
    restated = _run_with("newer", Metric("my_score", 0.5, "", "neutral"))
    assert compare_runs([old, new, restated]).rows[0].threshold.direction == "neutral"


def test_deltas_are_against_the_baseline_mean():
    base, other = Stats.of([100.0, 102.0]), Stats.of([110.0, 112.0])
    cell = judge(base, other, Threshold(5, 10, "lower"))
    assert cell.delta == pytest.approx(10.0)
    assert cell.delta_pct == pytest.approx(100 * 10 / 101)
    assert cell.flag == "warning"  # 9.9% worse: past 5, short of 10


@pytest.mark.parametrize(("value", "direction", "flag"), [
    (104.9, "lower", "ok"),
    (105.0, "lower", "warning"),
    (110.0, "lower", "critical"),
    (80.0, "lower", "ok"),         # faster is never a regression
    (95.0, "higher", "warning"),
    (89.0, "higher", "critical"),
    (150.0, "higher", "ok"),
    (200.0, "neutral", "ok"),      # never flagged
])
def test_flags_follow_the_bad_direction(value, direction, flag):
    cell = judge(Stats.of([100.0]), Stats.of([value]), Threshold(5, 10, direction))
    assert cell.flag == flag


def test_a_bad_move_from_zero_is_critical_and_a_missing_metric_is_flagged():
    errors_appear = judge(Stats.of([0.0]), Stats.of([0.02]), Threshold(5, 10, "lower"))
    assert errors_appear.delta_pct is None and errors_appear.flag == "critical"
    still_zero = judge(Stats.of([0.0]), Stats.of([0.0]), Threshold(5, 10, "lower"))
    assert still_zero.flag == "ok"
    assert judge(Stats.of([1.0]), None, Threshold()).flag == "missing"
    assert judge(None, Stats.of([1.0]), Threshold()).flag is None


def test_zero_thresholds_flag_any_worsening():
    cell = judge(Stats.of([100.0]), Stats.of([100.001]), Threshold(0, 0, "lower"))
    assert cell.flag == "critical"


def test_compare_runs_planted_regression():
    base, slow = make_run("base", requests=200), make_run("slow", scale=1.2, requests=200)
    comparison = compare_runs([base, slow])
    rows = {(row.benchmark, row.metric): row for row in comparison.rows}
    ttft = rows[("throughput", "ttft_ms_p99")]
    assert ttft.cells[0].stats.n == 3  # three repetitions pooled per run
    assert ttft.cells[1].delta_pct == pytest.approx(20.0)
    assert ttft.flag == "critical"
    throughput = rows[("throughput", "output_tokens_per_s")]
    assert throughput.threshold.direction == "higher"
    assert throughput.cells[1].delta_pct < -10 and throughput.flag == "critical"
    assert rows[("mmlu", "acc_stderr")].flag == "ok"
    assert comparison.critical
    same = compare_runs([base, make_run("again", requests=200)])
    assert not same.critical and same.counts() == {"critical": 0, "warning": 0, "missing": 0}


def test_comparison_json_is_complete():
    doc = compare_runs([make_run("base", requests=50), make_run("slow", scale=1.2,
                                                               requests=50)]).to_dict()
    assert doc["baseline"] == "base"
    assert [run["id"] for run in doc["runs"]] == ["base", "slow"]
    row = next(r for r in doc["rows"] if r["metric"] == "ttft_ms_p99")
    assert row["flag"] == "critical" and row["direction"] == "lower"
    assert row["values"][0]["stats"]["n"] == 3 and row["values"][0]["flag"] is None
    assert row["values"][1]["delta_pct"] == pytest.approx(20.0)
    assert doc["regressions"]["critical"] > 0


def test_benchmarks_with_different_params_in_one_run_are_kept_apart():
    def result(concurrency: int, run_number: int) -> BenchmarkResult:
        return BenchmarkResult("throughput", "1", run_number, True,
                               metrics=(Metric("output_tokens_per_s", 100.0 * concurrency,
                                               "tokens/s"),),
                               params={"load": {"concurrency": concurrency}, "max_tokens": 64})

    results = (result(1, 1), result(1, 2), result(8, 1), result(8, 2))
    assert result_keys(results) == ["throughput [load.concurrency=1]"] * 2 + [
        "throughput [load.concurrency=8]"] * 2
    run = attrs.evolve(make_run(requests=10), results=results)
    values = metric_values(run.results)
    assert {key: found.values for key, found in values.items()} == {
        ("throughput [load.concurrency=1]", "output_tokens_per_s", "tokens/s"): [100.0, 100.0],
        ("throughput [load.concurrency=8]", "output_tokens_per_s", "tokens/s"): [800.0, 800.0],
    }


def test_metrics_only_in_later_runs_are_shown_unflagged():
    base = make_run("base", requests=20)
    extra = attrs.evolve(base, id="extra", results=(*base.results, BenchmarkResult(
        "new", "1", 1, True, metrics=(Metric("ttft_ms_p50", 5.0, "ms", "lower"),))))
    rows = {r.benchmark: r for r in compare_runs([base, extra]).rows}
    assert rows["new"].cells[0].stats is None and rows["new"].flag is None
    reverse = {r.benchmark: r for r in compare_runs([extra, base]).rows}
    assert reverse["new"].flag == "missing"


def test_threshold_precedence_rule_then_command_line_then_file_defaults():
    thresholds = Thresholds(3, 6, (
        Rule("ttft_*", warn_pct=20, critical_pct=40),
        Rule("throughput/ttft_ms_p99", critical_pct=2),
        Rule("acc*", direction="neutral"),
    )).with_defaults(None, 8)
    assert thresholds.for_metric("throughput", "ttft_ms_p50", "lower") == Threshold(
        20, 40, "lower")
    # exact beats glob; a lone low critical pulls the warning level down with it
    assert thresholds.for_metric("throughput", "ttft_ms_p99", "lower") == Threshold(
        2, 2, "lower")
    assert thresholds.for_metric("mmlu", "acc", "higher") == Threshold(3, 8, "neutral")
    assert thresholds.for_metric("x", "e2e_ms_p50", "lower") == Threshold(3, 8, "lower")


def test_command_line_thresholds_are_checked():
    with pytest.raises(BadInput, match="above --critical"):
        Thresholds().with_defaults(20, 10)
    with pytest.raises(BadInput, match="--warn must be a percentage"):
        Thresholds().with_defaults(-1, None)


def test_huge_values_give_unknowns_not_infinities():
    stats = Stats.of([1e308, 1e308, -1e308])
    assert math.isfinite(stats.mean) and stats.stddev is None and stats.cv is None
    # each squared deviation fits a float, their sum does not
    assert Stats.of([1.3e154, -1.3e154]).stddev is None
    cell = judge(Stats.of([1e308]), Stats.of([-1e308]), Threshold(5, 10, "lower"))
    assert cell.delta is None and cell.flag is None
    json.dumps(attrs.asdict(cell), allow_nan=False)
