"""KITT and lm-eval's own CLI, on the same server, fixture and settings, must agree item by
item and in every score (the tiny model is random: scores are near chance; the point is
exact agreement)."""

from __future__ import annotations

import json
import math

import pytest
from support.lmevalcli import run_cli, write_tasks
from support.quality import DATASETS, make_context, params

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def _benchmark(name):
    from kitt_bench_quality.benchmarks import GSM8K, MMLU, HellaSwag, TruthfulQA

    return {"mmlu": MMLU, "gsm8k": GSM8K, "hellaswag": HellaSwag, "truthfulqa": TruthfulQA}[
        name]()


def _kitt_items(measurement):
    return {item.item_id: item for item in measurement.items}


def assert_agree(measurement, ref_results, ref_samples, metric_keys):
    """Every item the same (choice logprobs or generated text, and its scores), and every
    task's scores identical."""
    items = _kitt_items(measurement)
    compared = 0
    max_logprob_diff = 0.0
    for task, samples in ref_samples.items():
        by_doc: dict[int, dict[str, dict]] = {}
        for sample in samples:
            by_doc.setdefault(sample["doc_id"], {})[sample["filter"]] = sample
        assert {f"{task}/{doc}" for doc in by_doc} == {k for k in items
                                                       if k.startswith(f"{task}/")}
        for doc_id, filters in by_doc.items():
            item = items[f"{task}/{doc_id}"]
            for flt, sample in filters.items():
                for metric in sample["metrics"]:
                    key = metric if f"{metric},{flt}" not in item.scores else f"{metric},{flt}"
                    assert item.scores[key] == pytest.approx(sample[metric], abs=1e-12), (
                        task, doc_id, flt, metric)
            sample = next(iter(filters.values()))
            resps = sample["filtered_resps"]
            if resps and isinstance(resps[0], list):  # loglikelihood
                output = json.loads(item.output)
                for index, (logprob, greedy) in enumerate(resps):
                    diff = abs(output["logprobs"][index] - float(logprob))
                    max_logprob_diff = max(max_logprob_diff, diff)
                    assert output["greedy"][index] == (greedy in (True, "True"))
            else:
                assert json.loads(item.output)["text"] == sample["resps"][0][0], (task, doc_id)
            compared += 1
    assert max_logprob_diff == 0.0, f"choice logprobs differ by up to {max_logprob_diff}"
    for task, specs in metric_keys.items():
        for lm_key, name in specs:
            kitt = measurement.details["tasks"][task][name]
            ref = ref_results["results"][task][lm_key]
            assert kitt == ref, (task, name, kitt, ref)
    return compared


LOGLIKELIHOOD_CASES = {
    "mmlu": {f"mmlu_{s}": [("acc,none", "acc")]
             for s in ("abstract_algebra", "anatomy", "high_school_geography")},
    "hellaswag": {"hellaswag": [("acc,none", "acc"), ("acc_norm,none", "acc_norm")]},
    "truthfulqa": {"truthfulqa_mc1": [("acc,none", "mc1")],
                   "truthfulqa_mc2": [("acc,none", "mc2")]},
}


@pytest.mark.parametrize("name", sorted(LOGLIKELIHOOD_CASES))
def test_loglikelihood_agrees_with_lm_eval_cli(name, llama_cpp_python, tmp_path):
    server = llama_cpp_python
    tasks = write_tasks(name, tmp_path / "tasks")
    ref_results, ref_samples = run_cli(server.base_url, server.model, server.hf_dir, tasks,
                                       tmp_path / "tasks", tmp_path / "lm-eval-out")
    benchmark = _benchmark(name)
    measurement = benchmark.run(
        make_context(server, tmp_path / "kitt", model_path=server.hf_dir),
        params(benchmark, dataset=str(DATASETS / name), concurrency=1))
    assert measurement.details["scoring_mode"] == "loglikelihood"
    compared = assert_agree(measurement, ref_results, ref_samples, LOGLIKELIHOOD_CASES[name])
    assert compared == sum(len(s) for s in ref_samples.values())
    if name == "mmlu":  # the weighted group accuracy is the mean over all items
        accs = [s["acc"] for samples in ref_samples.values() for s in samples]
        overall = next(m for m in measurement.metrics if m.name == "acc").value
        assert math.isclose(overall, sum(accs) / len(accs), rel_tol=1e-12)


def test_gsm8k_generative_agrees_with_lm_eval_cli(llama_server, tmp_path):
    server = llama_server
    tasks = write_tasks("gsm8k", tmp_path / "tasks")
    ref_results, ref_samples = run_cli(server.base_url, server.model, server.hf_dir, tasks,
                                       tmp_path / "tasks", tmp_path / "lm-eval-out",
                                       concurrency=1,
                                       extra=["--gen_kwargs", "max_gen_toks=48"])
    benchmark = _benchmark("gsm8k")
    measurement = benchmark.run(
        make_context(server, tmp_path / "kitt", model_path=server.hf_dir),
        params(benchmark, dataset=str(DATASETS / "gsm8k"), concurrency=1, max_tokens=48))
    assert measurement.details["scoring_mode"] == "generative"
    assert_agree(measurement, ref_results, ref_samples, {"gsm8k": [
        ("exact_match,strict-match", "exact_match_strict"),
        ("exact_match,flexible-extract", "exact_match_flexible")]})


def test_mmlu_generative_agrees_with_lm_eval_cli(llama_server, tmp_path):
    server = llama_server
    tasks = write_tasks("mmlu", tmp_path / "tasks", mode="generative")
    ref_results, ref_samples = run_cli(server.base_url, server.model, server.hf_dir, tasks,
                                       tmp_path / "tasks", tmp_path / "lm-eval-out",
                                       concurrency=1, extra=["--gen_kwargs", "max_gen_toks=8"])
    benchmark = _benchmark("mmlu")
    measurement = benchmark.run(
        make_context(server, tmp_path / "kitt", model_path=server.hf_dir),
        params(benchmark, dataset=str(DATASETS / "mmlu"), concurrency=1, max_tokens=8))
    assert measurement.details["scoring_mode"] == "generative"
    assert_agree(measurement, ref_results, ref_samples, {
        f"mmlu_{s}_generative": [("exact_match,get_response", "acc")]
        for s in ("abstract_algebra", "anatomy", "high_school_geography")})


@pytest.mark.vllm
@pytest.mark.parametrize("name", ["mmlu", "hellaswag"])
def test_vllm_loglikelihood_agrees_with_lm_eval_cli(name, vllm_server, tmp_path):
    """vLLM takes token-id prompts: KITT detects it and, like lm-eval's default
    (`tokenized_requests=True`), sends token ids."""
    server = vllm_server
    tasks = write_tasks(name, tmp_path / "tasks")
    ref_results, ref_samples = run_cli(server.base_url, server.model, server.hf_dir, tasks,
                                       tmp_path / "tasks", tmp_path / "lm-eval-out",
                                       tokenized_requests=True)
    benchmark = _benchmark(name)
    measurement = benchmark.run(
        make_context(server, tmp_path / "kitt", model_path=server.hf_dir),
        params(benchmark, dataset=str(DATASETS / name), concurrency=1))
    assert measurement.details["scoring_mode"] == "loglikelihood"
    assert measurement.details["settings"]["tokenized_requests"] is True
    assert_agree(measurement, ref_results, ref_samples, LOGLIKELIHOOD_CASES[name])
