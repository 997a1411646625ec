"""The perf benchmarks' own rules, without an engine: parameters, the stabilization rule,
the sweep's choice, Prometheus parsing and the process tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cattrs
import pytest

from kitt._util.converter import structure
from kitt_bench_perf.benchmarks.params import (
    LongContextParams,
    SweepParams,
    ThroughputParams,
    WarmupAnalysisParams,
)


def test_params_defaults_and_validation():
    params = structure({"concurrency": 3, "max_tokens": 7}, ThroughputParams)
    assert (params.concurrency, params.max_tokens, params.max_error_rate) == (3, 7, 0.0)
    with pytest.raises(cattrs.BaseValidationError):
        structure({"concurrency": "many"}, ThroughputParams)
    with pytest.raises(cattrs.BaseValidationError):
        structure({"nope": 1}, ThroughputParams)
    for bad in ({"concurrency": 0}, {"max_error_rate": 1.5}, {"endpoint": "grpc"}):
        with pytest.raises((ValueError, cattrs.BaseValidationError)):
            structure(bad, ThroughputParams)
    with pytest.raises((ValueError, cattrs.BaseValidationError)):
        structure({"levels": [2, 2]}, SweepParams)
    with pytest.raises((ValueError, cattrs.BaseValidationError)):
        structure({"requests": 6, "window": 4}, WarmupAnalysisParams)
    with pytest.raises((ValueError, cattrs.BaseValidationError)):
        structure({"positions": [1.5]}, LongContextParams)


@pytest.mark.parametrize("api", ["openai", "ollama"])
def test_generate_stream_is_refused_for_engines_other_than_tgi(api, tmp_path):
    from kitt import plugins
    from kitt.benchmark import BenchmarkContext, Target
    from kitt.errors import BadInput
    from kitt.records import Fingerprint

    benchmark = plugins.benchmarks()["throughput"]
    params = structure({"endpoint": "generate_stream", "requests": 1}, benchmark.Params)
    # Refused before anything is sent: nothing listens on port 9.
    context = BenchmarkContext(Target("http://127.0.0.1:9", "m", api), Fingerprint("test"),
                               tmp_path, seed=1)
    with pytest.raises(BadInput, match="generate_stream.*TGI's native API.*" + api):
        benchmark.run(context, params)


def test_endpoint_for_picks_tgis_native_api_only_when_asked():
    from kitt import Route
    from kitt.benchmark import Target
    from kitt_bench_perf.benchmarks.common import endpoint_for

    tgi = Target("http://127.0.0.1:9", "m", "tgi")
    assert endpoint_for(tgi, "completions").route is Route.OPENAI_CHAT  # the default
    assert endpoint_for(tgi, "chat").route is Route.OPENAI_CHAT
    assert endpoint_for(tgi, "generate_stream").route is Route.TGI_GENERATE_STREAM


def test_stabilization_rule():
    from kitt_bench_perf.benchmarks.warmup_analysis import stabilization

    values = [100.0, 60.0, 30.0, 12.0, 10.0, 10.0, 11.0, 9.0, 10.0, 10.0, 10.0, 10.0]
    found = stabilization(values, window=3, tolerance=0.2)
    assert found.reference == 10.0
    # Rolling medians: [60, 30, 12, 10, 10, 10, 10, 10, 10, 10]; 12 is within 20% of 10.
    assert found.index == 2
    assert stabilization([10.0] * 10, 3, 0.1).index == 0
    # A step to a new level: it settles there (the reference is the second half's median).
    assert stabilization([10.0] * 7 + [50.0] * 5, 3, 0.1).index == 6
    # Still rising at the end: the last window is out of band, never stabilized.
    assert stabilization([10.0] * 9 + [30.0, 50.0, 70.0], 3, 0.1).index is None


def test_sweep_picks_fastest_qualifying_level():
    from kitt_bench_perf.benchmarks.sweep import best_level

    levels = [{"concurrency": 1, "output_tokens_per_s": 100.0, "meets_slo": True},
              {"concurrency": 2, "output_tokens_per_s": 180.0, "meets_slo": True},
              {"concurrency": 4, "output_tokens_per_s": 250.0, "meets_slo": False}]
    assert best_level(levels)["concurrency"] == 2
    levels[1]["output_tokens_per_s"] = 100.0
    assert best_level(levels)["concurrency"] == 1  # a tie goes to the lower level
    assert best_level([{**lv, "meets_slo": False} for lv in levels]) is None


PROMETHEUS_TEXT = """\
# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 2
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 1234
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="m"} 3
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 4
vllm:e2e_request_latency_seconds_sum{model_name="m"} 2.5
vllm:e2e_request_latency_seconds_count{model_name="m"} 4
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} NaN
"""


def test_parse_metrics_keeps_gauges_counters_and_histogram_totals():
    from kitt_bench_perf.server_metrics import parse_metrics

    values = parse_metrics(PROMETHEUS_TEXT)
    assert values == {
        "llamacpp:requests_processing": 2.0,
        "llamacpp:tokens_predicted_total": 1234.0,
        'vllm:e2e_request_latency_seconds_sum{model_name="m"}': 2.5,
        'vllm:e2e_request_latency_seconds_count{model_name="m"}': 4.0,
    }


def test_process_tree_finds_children_and_excludes_strangers():
    from kitt_bench_perf.memory import ProcessTreeRss, process_tree

    # A session leader with a child, like an engine KITT launches.
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time;"
         "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']);"
         "time.sleep(30)"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(process_tree(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = process_tree(parent.pid)
        assert parent.pid in tree and len(tree) == 2
        assert os.getpid() not in tree
        assert ProcessTreeRss(parent.pid).sample()["rss"] > 0
    finally:
        os.killpg(parent.pid, 9)
        parent.wait()
    assert process_tree(parent.pid) == set()


def test_plugin_module_imports_nothing_heavy():
    code = ("import sys\nfrom kitt import plugins\nnames = sorted(plugins.benchmarks())\n"
            "print([m for m in ('aiohttp', 'numpy', 'prometheus_client', 'docker', 'pynvml')"
            " if m in sys.modules])\nprint(names)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    heavy, names = done.stdout.splitlines()[-2:]
    assert heavy == "[]"
    for name in ("throughput", "latency", "streaming_latency", "concurrency_sweep",
                 "memory_usage", "warmup_analysis", "long_context"):
        assert repr(name) in names
