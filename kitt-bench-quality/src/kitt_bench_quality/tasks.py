"""lm-eval task configurations for KITT's standard benchmarks.

Each benchmark starts from lm-eval's own task YAML (shipped with lm-eval) and changes only
where the data comes from. The generative variants of the multiple-choice tasks for
engines without prompt logprobs are lm-eval's own where it has one (MMLU) and KITT's,
documented in docs/quality.md, where it does not (HellaSwag, TruthfulQA mc1).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from kitt import BadInput
from kitt_bench_quality import data

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@attrs.frozen
class LmMetric:
    """Where one KITT metric is read from in lm-eval's results."""

    lm_key: str
    """lm-eval's result key: `acc,none`, `exact_match,strict-match`..."""
    name: str
    """KITT's metric name: `acc`, `mc1`, `exact_match_strict`..."""


@attrs.frozen
class TaskPlan:
    """What to evaluate and how to read lm-eval's results back."""

    configs: list[dict[str, Any]]
    metrics: dict[str, list[LmMetric]]
    """task name -> the metrics it contributes."""
    correct: dict[str, str]
    """task name -> the per-item metric that decides `correct` (a value >= 0.5)."""
    subjects: dict[str, str] = attrs.field(factory=dict)
    categories: dict[str, str] = attrs.field(factory=dict)
    dataset: str = ""
    notes: tuple[str, ...] = ()

    def correct_filter(self, task: str) -> str:
        """The lm-eval filter whose per-item metrics decide `correct`."""
        return self.metrics[task][0].lm_key.split(",")[1]


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def load_task_yaml(path: Path) -> dict[str, Any]:
    """An lm-eval task YAML with its `include`s merged and `!function`s resolved."""
    from lm_eval.tasks._yaml_loader import load_yaml

    return dict(load_yaml(path, resolve_func=True, recursive=True))


def _local_config(config: dict[str, Any], files: dict[str, Path]) -> dict[str, Any]:
    config = dict(config)
    suffixes = {data.FORMATS[path.suffix.lower()] for path in files.values()}
    config["dataset_path"] = suffixes.pop() if len(suffixes) == 1 else "json"
    config["dataset_name"] = None
    config["dataset_kwargs"] = {"data_files": {split: str(path) for split, path in files.items()}}
    for key in ("training_split", "validation_split", "test_split", "fewshot_split"):
        if config.get(key) and config[key] not in files:
            config[key] = None
    if not config.get("fewshot_split") and not config.get("training_split"):
        config.pop("fewshot_config", None)
    config.pop("tag", None)
    return config


def _localize(rows: dict[str, list[dict]], out_dir: Path, name: str) -> dict[str, Path]:
    """Local data rewritten as JSON Lines (one format for lm-eval to read)."""
    return {split: data.write_jsonl(out_dir / "data" / name / f"{split}.jsonl", split_rows)
            for split, split_rows in rows.items()}


def _need_fewshot(files: dict[str, Path] | None, split: str | None, num_fewshot: int | None,
                  default: int, schema: data.Schema, setting: str | None) -> None:
    shots = default if num_fewshot is None else num_fewshot
    if files is not None and shots > 0 and (split is None or split not in files):
        raise BadInput(
            f"{shots}-shot evaluation needs few-shot examples, but {setting} has no "
            f"{schema.fewshot_split!r} split",
            hint=f"add {schema.fewshot_split}.jsonl beside {schema.eval_split}.jsonl in a folder "
                 f"and pass the folder, or set num_fewshot: 0",
        )


# ---------------------------------------------------------------------------- MMLU

MMLU = data.Schema("cais/mmlu", {"question": "str", "subject": "str",
                                 "choices": "list of 4 str", "answer": "int 0-3"},
                   eval_split="test", fewshot_split="dev")


def mmlu_subjects() -> dict[str, str]:
    """lm-eval's MMLU subjects -> category (stem, humanities, social_sciences, other)."""
    import yaml

    subjects = {}
    for path in sorted((lm_eval_tasks_dir() / "mmlu" / "default").glob("mmlu_*.yaml")):
        raw = yaml.safe_load(path.read_text())
        tag = str(raw.get("tag", ""))
        subjects[raw["dataset_name"]] = tag.removeprefix("mmlu_").removesuffix("_tasks")
    return subjects


def mmlu_plan(params: Any, mode: str, out_dir: Path) -> TaskPlan:
    folder = lm_eval_tasks_dir() / "mmlu" / ("default" if mode == "loglikelihood" else "generative")
    known = mmlu_subjects()
    suffix = "" if mode == "loglikelihood" else "_generative"
    local: dict[str, dict[str, Path]] = {}
    if params.dataset:
        rows = data.load_local(params.dataset, MMLU)
        by_subject: dict[str, dict[str, list]] = {}
        for split, split_rows in rows.items():
            for row in split_rows:
                by_subject.setdefault(str(row["subject"]), {}).setdefault(split, []).append(row)
        subjects = sorted(s for s in by_subject if MMLU.eval_split in by_subject[s])
        for subject in subjects:
            local[subject] = _localize(by_subject[subject], out_dir, f"mmlu/{subject}")
    else:
        subjects = sorted(known)
    if params.subjects:
        unknown = sorted(set(params.subjects) - set(subjects))
        if unknown:
            raise BadInput(f"mmlu: unknown subject(s) {', '.join(unknown)}",
                           hint=f"choose from: {', '.join(subjects)}")
        subjects = [s for s in subjects if s in set(params.subjects)]
    configs, metrics, correct, subject_of, category_of = [], {}, {}, {}, {}
    for subject in subjects:
        path = folder / f"mmlu_{subject}.yaml"
        if path.exists():
            config = load_task_yaml(path)
        else:  # a subject of the user's own, formatted the way lm-eval formats all 57
            config = load_task_yaml(folder / "_default_template_yaml")
            config["description"] = (
                f"The following are multiple choice questions (with answers) about "
                f"{' '.join(subject.split('_'))}.\n\n")
            config["dataset_name"] = subject
        task = f"mmlu_{subject}{suffix}"
        config["task"] = task
        config.pop("task_alias", None)
        if subject in local:
            _need_fewshot(local[subject], "dev", params.num_fewshot, 0, MMLU, params.dataset)
            config = _local_config(config, local[subject])
        else:
            config.pop("tag", None)
        configs.append(config)
        key = "acc,none" if mode == "loglikelihood" else "exact_match,get_response"
        metrics[task] = [LmMetric(key, "acc")]
        correct[task] = key.split(",")[0]
        subject_of[task] = subject
        category_of[task] = known.get(subject, "other")
    if not configs:
        raise BadInput(f"mmlu: no items with a {MMLU.eval_split!r} split to evaluate")
    notes = () if mode == "loglikelihood" else (
        "generative: lm-eval's mmlu_*_generative tasks (exact match of the answer letter)",)
    return TaskPlan(configs, metrics, correct, subject_of, category_of, MMLU.dataset, notes)


# ---------------------------------------------------------------------------- GSM8K

GSM8K = data.Schema("openai/gsm8k (main)", {"question": "str", "answer": "str ending '#### N'"},
                    eval_split="test", fewshot_split="train")


def gsm8k_plan(params: Any, mode: str, out_dir: Path) -> TaskPlan:
    config = load_task_yaml(lm_eval_tasks_dir() / "gsm8k" / "gsm8k.yaml")
    config.pop("tag", None)
    if params.dataset:
        files = _localize(data.load_local(params.dataset, GSM8K), out_dir, "gsm8k")
        _need_fewshot(files, "train", params.num_fewshot, int(config.get("num_fewshot") or 0),
                      GSM8K, params.dataset)
        config = _local_config(config, files)
    if params.max_tokens:
        config["generation_kwargs"] = {**config.get("generation_kwargs", {}),
                                       "max_gen_toks": params.max_tokens}
    metrics = {"gsm8k": [LmMetric("exact_match,strict-match", "exact_match_strict"),
                         LmMetric("exact_match,flexible-extract", "exact_match_flexible")]}
    return TaskPlan([config], metrics, {"gsm8k": "exact_match"}, dataset=GSM8K.dataset)


# ---------------------------------------------------------------------------- TruthfulQA

TRUTHFULQA = data.Schema(
    "truthfulqa/truthful_qa (multiple_choice)",
    {"question": "str", "mc1_targets": "{choices: [str], labels: [int]}",
     "mc2_targets": "{choices: [str], labels: [int]}"},
    eval_split="validation")


def _seeded_shuffle(key: str, items: list) -> list[int]:
    order = list(range(len(items)))
    random.Random(int(hashlib.sha256(key.encode()).hexdigest()[:16], 16)).shuffle(order)
    return order


def _truthfulqa_gen_docs(dataset):
    def _doc(doc):
        choices = list(doc["mc1_targets"]["choices"])
        order = _seeded_shuffle(doc["question"], choices)
        gold = order.index(list(doc["mc1_targets"]["labels"]).index(1))
        return {"options": [choices[i] for i in order], "gold": gold,
                "gold_letter": LETTERS[gold]}

    return dataset.map(_doc)


def truthfulqa_plan(params: Any, mode: str, out_dir: Path) -> TaskPlan:
    folder = lm_eval_tasks_dir() / "truthfulqa"
    files = None
    if params.dataset:
        files = _localize(data.load_local(params.dataset, TRUTHFULQA), out_dir, "truthfulqa")
    if mode == "loglikelihood":
        configs = []
        for name in ("truthfulqa_mc1", "truthfulqa_mc2"):
            config = load_task_yaml(folder / f"{name}.yaml")
            config.pop("tag", None)
            configs.append(_local_config(config, files) if files else config)
        return TaskPlan(configs,
                        {"truthfulqa_mc1": [LmMetric("acc,none", "mc1")],
                         "truthfulqa_mc2": [LmMetric("acc,none", "mc2")]},
                        {"truthfulqa_mc1": "acc", "truthfulqa_mc2": "acc"},
                        dataset=TRUTHFULQA.dataset)
    mc1 = load_task_yaml(folder / "truthfulqa_mc1.yaml")
    primer = mc1["doc_to_text"].split("{{prompt_qa")[0]
    config = {
        "task": "truthfulqa_mc1_generative",
        "dataset_path": mc1["dataset_path"], "dataset_name": mc1["dataset_name"],
        "validation_split": "validation", "output_type": "generate_until",
        "num_fewshot": 0,
        "process_docs": _truthfulqa_gen_docs,
        # The same six-question primer as mc1, then the options, lettered, in a fixed
        # per-question shuffle (in the dataset the true answer is always first).
        "doc_to_text": primer + "{{prompt_qa + '\\n\\nQ: ' + question + '\\n'}}"
                       "{% for option in options %}{{ 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[loop.index0] }}"
                       ". {{ option }}\n{% endfor %}Answer:",
        "doc_to_target": "{{gold_letter}}",
        **_letter_scoring(params, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        "metadata": {"version": 1.0},
    }
    if files:
        config = _local_config(config, files)
    return TaskPlan([config], {"truthfulqa_mc1_generative": [LmMetric(
        "exact_match,letter", "mc1")]}, {"truthfulqa_mc1_generative": "exact_match"},
        dataset=TRUTHFULQA.dataset,
        notes=("generative: mc1 only (mc2 needs probabilities); options lettered in a "
               "fixed per-question shuffle; the first standalone letter of the answer counts",))


def _letter_scoring(params: Any, letters: str) -> dict[str, Any]:
    return {
        "generation_kwargs": {"until": ["\n"], "do_sample": False, "temperature": 0.0,
                              "max_gen_toks": params.max_tokens or 16},
        "filter_list": [{"name": "letter", "filter": [
            {"function": "regex", "regex_pattern": f"\\b([{letters[0]}-{letters[-1]}])\\b"},
            {"function": "take_first"}]}],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean",
                         "higher_is_better": True}],
    }


# ---------------------------------------------------------------------------- HellaSwag

HELLASWAG = data.Schema(
    "Rowan/hellaswag",
    {"activity_label": "str", "ctx_a": "str", "ctx_b": "str", "endings": "list of 4 str",
     "label": "str or int 0-3"},
    eval_split="validation", fewshot_split="train")


def hellaswag_plan(params: Any, mode: str, out_dir: Path) -> TaskPlan:
    config = load_task_yaml(lm_eval_tasks_dir() / "hellaswag" / "hellaswag.yaml")
    config.pop("tag", None)
    files = None
    if params.dataset:
        files = _localize(data.load_local(params.dataset, HELLASWAG), out_dir, "hellaswag")
        _need_fewshot(files, "train", params.num_fewshot, 0, HELLASWAG, params.dataset)
    if mode == "loglikelihood":
        if files:
            config = _local_config(config, files)
        return TaskPlan([config], {"hellaswag": [LmMetric("acc,none", "acc"),
                                                 LmMetric("acc_norm,none", "acc_norm")]},
                        {"hellaswag": "acc"}, dataset=HELLASWAG.dataset)
    process: Callable = config["process_docs"]
    gen = {
        "task": "hellaswag_generative",
        "dataset_path": config["dataset_path"], "dataset_name": config.get("dataset_name"),
        "training_split": "train", "validation_split": "validation",
        "output_type": "generate_until", "process_docs": process,
        "doc_to_text": "{{query}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
                       "D. {{choices[3]}}\nAnswer:",
        "doc_to_target": "{{['A', 'B', 'C', 'D'][gold]}}",
        **_letter_scoring(params, "ABCD"),
        "metadata": {"version": 1.0},
    }
    if files:
        gen = _local_config(gen, files)
    return TaskPlan([gen], {"hellaswag_generative": [LmMetric("exact_match,letter", "acc")]},
                    {"hellaswag_generative": "exact_match"}, dataset=HELLASWAG.dataset,
                    notes=("generative: endings lettered A-D; the first standalone letter of "
                           "the answer counts",))
