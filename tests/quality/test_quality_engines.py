"""Quality benchmarks against real engines on the tiny model: llama-cpp-python's server
(prompt logprobs: loglikelihood scoring) and llama-server (no prompt logprobs: generative)."""

from __future__ import annotations

import json
import textwrap

import pytest
from support.quality import DATASETS, make_context, params

from kitt.errors import BadInput

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def assert_declared(bench, measurement) -> None:
    """Each metric is declared by the benchmark, and its direction (lm-eval's own
    `higher_is_better`, or neutral for standard errors and counts) is the declared one."""
    for metric in measurement.metrics:
        spec = bench.metric_spec(metric.name)
        assert spec is not None, f"{bench.name} reported undeclared {metric.name!r}"
        assert metric.direction == spec.direction, metric


def _bench(name):
    from kitt_bench_quality.benchmarks import STANDARD

    return {cls.name: cls for cls in STANDARD}[name]()


def _metric(measurement, name):
    return next(m.value for m in measurement.metrics if m.name == name)


# ---------------------------------------------------------------------------- llama-server

def test_forced_loglikelihood_fails_clearly_on_llama_server(llama_server, tmp_path):
    bench = _bench("mmlu")
    with pytest.raises(BadInput) as info:
        bench.run(make_context(llama_server, tmp_path),
                  params(bench, dataset=str(DATASETS / "mmlu"), scoring_mode="loglikelihood"))
    assert "does not return them" in str(info.value)
    assert "scoring_mode: generative" in str(info.value)


@pytest.mark.parametrize("name", ["mmlu", "truthfulqa", "hellaswag"])
def test_auto_chooses_generative_on_llama_server(name, llama_server, tmp_path):
    bench = _bench(name)
    seen = []
    measurement = bench.run(
        make_context(llama_server, tmp_path, progress=lambda d, t: seen.append((d, t))),
        params(bench, dataset=str(DATASETS / name), max_tokens=8))
    assert measurement.details["scoring_mode"] == "generative"
    assert measurement.details["settings"]["scoring_mode_requested"] == "auto"
    assert "lacks prompt logprobs" in measurement.details["settings"]["scoring_mode_reason"]
    n = _metric(measurement, "n_items")
    assert n == len(measurement.items) > 0
    assert seen[-1] == (n, n)
    main = "mc1" if name == "truthfulqa" else "acc"
    assert 0.0 <= _metric(measurement, main) <= 1.0
    assert all(json.loads(item.output)["text"] for item in measurement.items)
    assert_declared(bench, measurement)


def test_gsm8k_chat_template_and_settings_recorded(llama_server, tmp_path):
    bench = _bench("gsm8k")
    measurement = bench.run(make_context(llama_server, tmp_path, model_path=llama_server.hf_dir),
                            params(bench, dataset=str(DATASETS / "gsm8k"), max_tokens=16,
                                   chat_template=True, num_fewshot=2, limit=3, seed=7))
    settings = measurement.details["settings"]
    assert settings["chat_template"] is True and settings["num_fewshot"] == 2
    assert settings["limit"] == 3 and settings["seed"] == 7 and settings["max_tokens"] == 16
    assert measurement.details["tasks"]["gsm8k"]["num_fewshot"] == 2
    assert len(measurement.items) == 3
    assert all("<|user|>" in item.prompt for item in measurement.items)
    names = {m.name for m in measurement.metrics}
    assert {"exact_match_strict", "exact_match_strict_stderr", "exact_match_flexible"} <= names


def test_custom_generative_eval_on_llama_server(llama_server, tmp_path):
    from kitt_bench_quality.custom import CustomBenchmark, load

    (tmp_path / "qa.jsonl").write_text("".join(
        json.dumps({"q": f"What is {a} plus {b}?", "a": str(a + b)}) + "\n"
        for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]))
    path = tmp_path / "arith.yaml"
    path.write_text(textwrap.dedent("""\
        name: arith
        dataset: {path: qa.jsonl}
        prompt: "Q: {{q}}\\nA:"
        target: "{{a}}"
        generation: {max_tokens: 12, stop: ["\\n"]}
        answer: {regex: "(\\\\d+)", select: first}
        """))
    bench = CustomBenchmark(path, load(path))
    measurement = bench.run(make_context(llama_server, tmp_path / "out"),
                            params(bench, concurrency=2))
    assert measurement.details["scoring_mode"] == "generative"
    assert len(measurement.items) == 4
    assert {"exact_match", "n_items"} <= {m.name for m in measurement.metrics}


# ---------------------------------------------------------------------------- llama-cpp-python

def test_mmlu_loglikelihood_breakdowns_and_sample(llama_cpp_python, tmp_path):
    bench = _bench("mmlu")
    measurement = bench.run(make_context(llama_cpp_python, tmp_path),
                            params(bench, dataset=str(DATASETS / "mmlu"), limit=6, seed=3))
    assert measurement.details["scoring_mode"] == "loglikelihood"
    assert len(measurement.items) == 6
    from kitt._util.converter import to_json

    to_json(measurement)  # plain JSON all the way down (NaN would raise)
    ids = sorted(item.item_id for item in measurement.items)
    assert ids != sorted(f"mmlu_abstract_algebra/{i}" for i in range(4))[:6]
    names = {m.name for m in measurement.metrics}
    assert {"acc", "acc_stderr", "n_items"} <= names
    assert_declared(bench, measurement)
    directions = {m.name: m.direction for m in measurement.metrics}
    assert directions == {"acc": "higher", "acc_stderr": "neutral", "n_items": "neutral"}
    subjects = measurement.details["subjects"]
    assert sum(s["n"] for s in subjects.values()) == 6
    assert set(measurement.details["categories"]) <= {"stem", "social_sciences", "other",
                                                      "humanities"}
    for item in measurement.items:
        output = json.loads(item.output)
        assert output["choices"] == [" A", " B", " C", " D"]
        assert len(output["logprobs"]) == 4 and item.target in (" A", " B", " C", " D")
        assert item.correct == (max(range(4), key=output["logprobs"].__getitem__)
                                == " ABCD".index(item.target.strip()) - 1)


def test_engine_tokenizer_matches_model_folder(llama_cpp_python, tmp_path):
    bench = _bench("hellaswag")
    by_folder = bench.run(make_context(llama_cpp_python, tmp_path / "a"),
                          params(bench, dataset=str(DATASETS / "hellaswag"), concurrency=1))
    by_engine = bench.run(make_context(llama_cpp_python, tmp_path / "b", model_path=None),
                          params(bench, dataset=str(DATASETS / "hellaswag"), concurrency=1,
                                 tokenizer="engine"))
    assert "tokenize endpoint" in by_engine.details["settings"]["tokenizer"]
    assert [i.output for i in by_engine.items] == [i.output for i in by_folder.items]
    assert _metric(by_engine, "acc_norm") == _metric(by_folder, "acc_norm")


def test_interrupted_run_resumes_without_redoing_items(llama_cpp_python, tmp_path):
    bench = _bench("hellaswag")
    settings = {"dataset": str(DATASETS / "hellaswag"), "concurrency": 1}
    reference = bench.run(make_context(llama_cpp_python, tmp_path / "ref"),
                          params(bench, **settings))

    class Stop(BaseException):
        pass

    def interrupt(done, total):
        if done >= 3:
            raise Stop

    out = tmp_path / "run"
    with pytest.raises(Stop):
        bench.run(make_context(llama_cpp_python, out, progress=interrupt),
                  params(bench, **settings))
    finished = len((out / "checkpoint.jsonl").read_text().splitlines()) - 1
    assert 3 * 4 <= finished < 6 * 4  # 4 requests (endings) per item
    resumed = bench.run(make_context(llama_cpp_python, out), params(bench, **settings))
    assert resumed.details["reused_requests"] == finished
    assert [i.output for i in resumed.items] == [i.output for i in reference.items]
    assert resumed.metrics == reference.metrics
    # Other settings never reuse a checkpoint.
    other = bench.run(make_context(llama_cpp_python, out),
                      params(bench, **settings, limit=2))
    assert other.details["reused_requests"] == 0


def test_custom_multiple_choice_and_lm_eval_yaml(llama_cpp_python, tmp_path):
    from kitt_bench_quality.custom import CustomBenchmark, load

    mmlu_test = DATASETS / "mmlu" / "test.jsonl"
    own = tmp_path / "own.yaml"
    own.write_text(textwrap.dedent(f"""\
        name: own-mmlu
        dataset: {{path: {mmlu_test}}}
        prompt: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
        target: "{{{{answer}}}}"
        choices: ["A", "B", "C", "D"]
        metrics: [acc, acc_norm]
        """))  # noqa: E501
    lm_eval_yaml = tmp_path / "lm.yaml"
    lm_eval_yaml.write_text(textwrap.dedent(f"""\
        task: lm_mmlu
        dataset_path: json
        dataset_kwargs: {{data_files: {{test: {mmlu_test}}}}}
        test_split: test
        output_type: multiple_choice
        doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
        doc_to_choice: ["A", "B", "C", "D"]
        doc_to_target: answer
        metric_list:
          - metric: acc
        """))  # noqa: E501
    results = {}
    for path in (own, lm_eval_yaml):
        bench = CustomBenchmark(path, load(path))
        results[path.stem] = bench.run(make_context(llama_cpp_python, tmp_path / path.stem),
                                       params(bench, concurrency=1))
        assert results[path.stem].details["scoring_mode"] == "loglikelihood"
        assert len(results[path.stem].items) == 12
    assert _metric(results["own"], "acc") == _metric(results["lm"], "acc")
    assert [json.loads(i.output)["logprobs"] for i in results["own"].items] == \
        [json.loads(i.output)["logprobs"] for i in results["lm"].items]


@pytest.mark.vllm
def test_vllm_truthfulqa_with_engine_tokenizer(vllm_server, tmp_path):
    bench = _bench("truthfulqa")
    by_folder = bench.run(make_context(vllm_server, tmp_path / "a", model_path=vllm_server.hf_dir),
                          params(bench, dataset=str(DATASETS / "truthfulqa")))
    by_engine = bench.run(make_context(vllm_server, tmp_path / "b", model_path=None),
                          params(bench, dataset=str(DATASETS / "truthfulqa"),
                                 tokenizer="engine"))
    for measurement in (by_folder, by_engine):
        assert measurement.details["scoring_mode"] == "loglikelihood"
        assert {"mc1", "mc1_stderr", "mc2", "mc2_stderr"} <= {m.name for m in measurement.metrics}
    assert "tokenize endpoint" in by_engine.details["settings"]["tokenizer"]
    logprobs = [[round(x, 4) for x in json.loads(i.output)["logprobs"]] for i in by_engine.items]
    assert logprobs == [[round(x, 4) for x in json.loads(i.output)["logprobs"]]
                        for i in by_folder.items]
