"""Reduced versions of the built-in suites: the same benchmarks, small enough for a CI
machine, quality benchmarks on the fixture datasets shipped under tests/fixtures."""

from __future__ import annotations

from pathlib import Path

DATASETS = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"

QUALITY = f"""\
  - name: mmlu
    params: {{dataset: {DATASETS / 'mmlu'}, limit: 4, concurrency: 2}}
  - name: gsm8k
    params: {{dataset: {DATASETS / 'gsm8k'}, limit: 2, max_tokens: 16, concurrency: 2}}
  - name: truthfulqa
    params: {{dataset: {DATASETS / 'truthfulqa'}, limit: 2, concurrency: 2}}
  - name: hellaswag
    params: {{dataset: {DATASETS / 'hellaswag'}, limit: 2, concurrency: 2}}
"""
STANDARD_PERF = """\
  - name: throughput
    params: {concurrency: 2, requests: 8, prompt_tokens: 32, max_tokens: 16}
  - name: latency
    params: {requests: 4, prompt_tokens: 32, max_tokens: 8}
  - name: memory_usage
    params: {concurrency: 2, requests: 6, prompt_tokens: 32, max_tokens: 16, idle_s: 0.5}
  - name: warmup_analysis
    params: {requests: 10, window: 3, prompt_tokens: 16, max_tokens: 8}
"""
OTHER_PERF = """\
  - name: streaming_latency
    params: {requests: 4, prompt_tokens: 32, max_tokens: 32}
  - name: concurrency_sweep
    params: {levels: [1, 2], requests: 4, prompt_tokens: 32, max_tokens: 16,
             slo_ttft_ms: 60000, slo_tpot_ms: 10000}
  - name: long_context
    params: {context_lengths: [256, 1024], positions: [0.0, 1.0], trials: 1, max_tokens: 8}
"""


def write_suite(folder: Path, name: str, *parts: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nwarmup: {{requests: 1, max_tokens: 4}}\nbenchmarks:\n"
                    + "".join(parts))
    return path


def reduced_standard(folder: Path) -> Path:
    return write_suite(folder, "standard-reduced", QUALITY, STANDARD_PERF)
