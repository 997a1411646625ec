"""Bad input, custom YAML validation, local datasets and the `kitt test` commands: no
engine needed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import run_kitt
from support.quality import DATASETS

from kitt.errors import BadInput


def _params(cls, **values):
    from kitt._util.converter import structure

    return structure(values, cls.Params)


# ---------------------------------------------------------------------------- import cost

def test_kitt_help_imports_nothing_heavy():
    code = textwrap.dedent("""
        import sys
        from kitt import plugins
        from kitt._cli import get_cli
        get_cli()
        names = sorted(plugins.benchmarks())
        heavy = [m for m in ("lm_eval", "datasets", "transformers", "numpy", "pyarrow",
                             "torch") if m in sys.modules]
        print(names, heavy)
        assert "mmlu" in names and not heavy, heavy
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------- custom YAML

def _write(tmp_path: Path, text: str, name: str = "ev.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"q": "2+2?", "a": "4", "opts": ["3", "4"], "gold": 1}\n')
    return path


def test_valid_generative_eval(tmp_path, data_file):
    from kitt_bench_quality.custom import load

    spec = load(_write(tmp_path, """\
        name: arith
        dataset: {path: qa.jsonl}
        prompt: "Q: {{q}}\\nA:"
        target: "{{a}}"
        answer: {regex: "(\\\\d+)", select: last}
        metrics: [exact_match]
        """))
    assert spec.name == "arith" and not spec.multiple_choice
    assert spec.config["output_type"] == "generate_until"
    assert spec.config["filter_list"][0]["filter"][0]["group_select"] == -1
    assert spec.config["dataset_kwargs"]["data_files"]["test"] == str(data_file)


def test_valid_multiple_choice_eval(tmp_path, data_file):
    from kitt_bench_quality.custom import load

    spec = load(_write(tmp_path, """\
        dataset: {path: qa.jsonl}
        prompt: "Q: {{q}}\\nA:"
        target: "{{gold}}"
        choices: "{{opts}}"
        metrics: [acc, acc_norm]
        """))
    assert spec.name == "ev" and spec.multiple_choice
    assert spec.config["output_type"] == "multiple_choice"


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("dataset: {path: qa.jsonl}\nprompt: 'x'\ntarget: 'y'\nmetircs: [exact_match]\n",
     4, "metircs", "unknown key"),
    ("dataset: {path: qa.jsonl}\nprompt: 'x'\n", 1, "target", "missing"),
    ("dataset: {path: missing.jsonl}\nprompt: 'x'\ntarget: 'y'\n", 1, "dataset.path",
     "does not exist"),
    ("dataset: {path: qa.jsonl}\nprompt: '{{q'\ntarget: 'y'\n", 2, "prompt",
     "invalid template"),
    ("dataset: {path: qa.jsonl}\nprompt: 'x'\ntarget: 'y'\nanswer:\n  regex: '(['\n", 5,
     "answer.regex", "regular expression"),
    ("dataset: {path: qa.jsonl}\nprompt: 'x'\ntarget: 'y'\nmetrics:\n  - exact_match\n"
     "  - acc\n", 6, "metrics[1]", "unknown metric"),
    ("dataset: {path: qa.jsonl}\nprompt: 'x'\ntarget: 'y'\nfewshot:\n  count: 2\n", 5,
     "fewshot.count", "needs examples"),
    ("dataset: {path: qa.jsonl}\nprompt: 'x'\ntarget: 'y'\ngeneration:\n  max_tokens: 0\n",
     5, "generation.max_tokens", "integer"),
    ("name: Bad Name\ndataset: {path: qa.jsonl}\nprompt: 'x'\ntarget: 'y'\n", 1, "name",
     "invalid name"),
])
def test_invalid_eval_names_file_line_and_field(tmp_path, data_file, text, line, field, words):
    from kitt_bench_quality.custom import load

    path = _write(tmp_path, text)
    with pytest.raises(BadInput) as info:
        load(path)
    message = str(info.value)
    assert f"{path}:{line}:" in message, message
    assert f"field {field!r}" in message, message
    assert words in message, message


def test_malformed_yaml_names_the_line(tmp_path):
    from kitt_bench_quality.custom import load

    path = _write(tmp_path, "dataset: {path: qa.jsonl}\nprompt: 'x\ntarget: [\n")
    with pytest.raises(BadInput, match=rf"{path}:\d+: invalid YAML"):
        load(path)


def test_lm_eval_task_yaml_is_accepted(tmp_path):
    from kitt_bench_quality.custom import load

    path = _write(tmp_path, f"""\
        task: my_lm_eval_task
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {DATASETS / "gsm8k" / "test.jsonl"}
        test_split: test
        output_type: generate_until
        doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
        doc_to_target: "{{{{answer}}}}"
        metric_list:
          - metric: exact_match
        """)
    spec = load(path)
    assert spec.lm_eval_task and spec.name == "my_lm_eval_task"
    assert spec.metrics == ("exact_match",)


def test_kitt_test_new_and_list(tmp_path):
    env = {"KITT_HOME": str(tmp_path / "home")}
    done = run_kitt("test", "new", "capitals", env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home" / "evals" / "capitals.yaml").is_file()
    again = run_kitt("test", "new", "capitals", env=env)
    assert again.returncode == 2 and "already exist" in again.stderr
    (tmp_path / "home" / "evals" / "broken.yaml").write_text("prompt: [\n")
    listed = run_kitt("test", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert {"mmlu", "gsm8k", "truthfulqa", "hellaswag", "capitals", "broken"} <= set(rows)
    assert rows["capitals"]["valid"] and rows["capitals"]["plugin"] == "quality"
    assert not rows["broken"]["valid"] and "broken.yaml:" in rows["broken"]["problem"]
    table = run_kitt("test", "list", env=env)
    assert "capitals" in table.stdout and "INVALID" in table.stdout


def test_kitt_test_new_rejects_bad_name(tmp_path):
    done = run_kitt("test", "new", "Bad Name", env={"KITT_HOME": str(tmp_path)})
    assert done.returncode == 2 and "invalid evaluation name" in done.stderr


# ---------------------------------------------------------------------------- local data

def test_missing_dataset_file(tmp_path):
    from kitt_bench_quality.benchmarks import MMLU
    from kitt_bench_quality.tasks import mmlu_plan

    with pytest.raises(BadInput, match="does not exist"):
        mmlu_plan(_params(MMLU, dataset=str(tmp_path / "nope.jsonl")), "loglikelihood",
                  tmp_path)


def test_wrong_columns(tmp_path):
    from kitt_bench_quality.benchmarks import MMLU
    from kitt_bench_quality.tasks import mmlu_plan

    path = tmp_path / "mmlu.jsonl"
    path.write_text('{"question": "q", "choices": ["a", "b", "c", "d"], "answer": 0}\n')
    with pytest.raises(BadInput) as info:
        mmlu_plan(_params(MMLU, dataset=str(path)), "loglikelihood", tmp_path / "out")
    assert "lacks column(s) subject" in str(info.value)
    assert "cais/mmlu schema" in str(info.value)


def test_folder_without_eval_split(tmp_path):
    from kitt_bench_quality.benchmarks import HellaSwag
    from kitt_bench_quality.tasks import hellaswag_plan

    (tmp_path / "train.jsonl").write_text((DATASETS / "hellaswag" / "train.jsonl").read_text())
    with pytest.raises(BadInput, match=r"no validation\.jsonl"):
        hellaswag_plan(_params(HellaSwag, dataset=str(tmp_path)), "loglikelihood",
                       tmp_path / "out")


def test_fewshot_needs_the_fewshot_split(tmp_path):
    from kitt_bench_quality.benchmarks import GSM8K
    from kitt_bench_quality.tasks import gsm8k_plan

    with pytest.raises(BadInput, match="num_fewshot: 0"):
        gsm8k_plan(_params(GSM8K, dataset=str(DATASETS / "gsm8k" / "test.jsonl")),
                   "generative", tmp_path)


def test_unknown_mmlu_subject(tmp_path):
    from kitt_bench_quality.benchmarks import MMLU
    from kitt_bench_quality.tasks import mmlu_plan

    with pytest.raises(BadInput, match="unknown subject"):
        mmlu_plan(_params(MMLU, dataset=str(DATASETS / "mmlu"), subjects=["astrology"]),
                  "loglikelihood", tmp_path)


@pytest.mark.parametrize("name", ["mmlu", "gsm8k", "truthfulqa", "hellaswag"])
def test_fixtures_load_as_lm_eval_tasks(name, tmp_path):
    """Each fixture (also as parquet) builds lm-eval tasks with every item."""
    import pyarrow
    import pyarrow.parquet

    from kitt_bench_quality import benchmarks, runner

    bench = {b.name: b for b in (cls() for cls in benchmarks.STANDARD)}[name]
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    for source in (DATASETS / name).glob("*.jsonl"):
        rows = [json.loads(line) for line in source.read_text().splitlines()]
        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows),
                                    parquet / f"{source.stem}.parquet")
    for folder in (DATASETS / name, parquet):
        mode = "generative" if name == "gsm8k" else "loglikelihood"
        plan = bench.build_plan(_params(type(bench), dataset=str(folder)), mode,
                                tmp_path / folder.name)
        tasks = runner.load_tasks(plan, str(folder))
        count = sum(len(task.eval_docs) for task in tasks.values())
        expected = len((DATASETS / name / ("validation.jsonl" if name in (
            "truthfulqa", "hellaswag") else "test.jsonl")).read_text().splitlines())
        assert count == expected * (2 if name == "truthfulqa" else 1)


def test_seeded_sample_is_seeded_not_first_n(tmp_path):
    from kitt_bench_quality import runner
    from kitt_bench_quality.benchmarks import MMLU

    plan = MMLU().build_plan(_params(MMLU, dataset=str(DATASETS / "mmlu")), "loglikelihood",
                             tmp_path)
    tasks = runner.load_tasks(plan, "x")
    first = runner.seeded_sample(tasks, 5, seed=1)
    assert first == runner.seeded_sample(tasks, 5, seed=1)
    assert sum(len(v) for v in first.values()) == 5
    samples = {json.dumps(runner.seeded_sample(tasks, 5, seed=s), sort_keys=True)
               for s in range(5)}
    assert len(samples) > 1
    assert runner.seeded_sample(tasks, 100, seed=1) is None  # all items


def test_offline_and_not_cached_says_how_to_use_local_files(tmp_path):
    code = textwrap.dedent("""
        from pathlib import Path
        from kitt._util.converter import structure
        from kitt.errors import BadInput
        from kitt_bench_quality import runner
        from kitt_bench_quality.benchmarks import GSM8K
        plan = GSM8K().build_plan(structure({}, GSM8K.Params), "generative", Path("."))
        try:
            runner.load_tasks(plan, None)
        except BadInput as error:
            print(error)
        else:
            raise SystemExit("no error")
    """)
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "openai/gsm8k" in done.stdout and "dataset: /path/to/file.jsonl" in done.stdout


def test_forced_loglikelihood_for_generative_benchmark():
    from kitt.benchmark import Target
    from kitt_bench_quality.runner import choose_mode

    with pytest.raises(BadInput, match="not available"):
        choose_mode("gsm8k", "loglikelihood", ("generative",),
                    Target(base_url="http://127.0.0.1:9", model="m"), 1)


def test_lm_eval_task_with_unknown_include(tmp_path):
    from kitt_bench_quality.custom import CustomBenchmark, load

    path = _write(tmp_path, """\
        include: no_such_task.yaml
        task: broken_task
        output_type: multiple_choice
        """)
    bench = CustomBenchmark(path, load(path))
    with pytest.raises(BadInput, match="cannot load this lm-eval task"):
        bench.build_plan(_params(bench), "loglikelihood", tmp_path / "out")


def test_invalid_custom_eval_fails_when_run(tmp_path):
    from kitt_bench_quality.custom import discover

    (tmp_path / "bad.yaml").write_text("prompt: 'x'\n")
    (bench,) = discover(tmp_path)
    assert bench.name == "bad" and bench.error is not None
    with pytest.raises(BadInput, match="required field 'dataset'"):
        bench.run(None, _params(bench))
