"""lm-eval's own CLI on the fixture datasets: the reference KITT must agree with.

Task YAMLs here are written the way an lm-eval user points lm-eval at local files: each
`include`s lm-eval's shipped task and replaces only the dataset source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DATASETS = Path(__file__).parent.parent / "fixtures" / "datasets"


def _lm_eval_tasks() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def _task_yaml(folder: Path, name: str, include: Path, files: dict[str, Path],
               extra: str = "") -> str:
    data_files = "".join(f"    {split}: {path}\n" for split, path in files.items())
    (folder / f"{name}.yaml").write_text(
        f"include: {include}\ntask: {name}\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n{data_files}{extra}")
    return name


def write_tasks(benchmark: str, folder: Path, mode: str = "loglikelihood") -> dict[str, str]:
    """lm-eval task files for the fixture of `benchmark`: {lm-eval task: KITT task}."""
    folder.mkdir(parents=True, exist_ok=True)
    tasks = _lm_eval_tasks()
    source = DATASETS / benchmark
    names: dict[str, str] = {}
    if benchmark == "mmlu":
        rows: dict[str, dict[str, list[str]]] = {}
        for split in ("test", "dev"):
            for line in (source / f"{split}.jsonl").read_text().splitlines():
                subject = json.loads(line)["subject"]
                rows.setdefault(subject, {}).setdefault(split, []).append(line)
        sub = "default" if mode == "loglikelihood" else "generative"
        suffix = "" if mode == "loglikelihood" else "_generative"
        for subject, splits in rows.items():
            files = {}
            for split, lines in splits.items():
                files[split] = folder / f"{subject}-{split}.jsonl"
                files[split].write_text("\n".join(lines) + "\n")
            name = _task_yaml(folder, f"ref_mmlu_{subject}{suffix}",
                              tasks / "mmlu" / sub / f"mmlu_{subject}.yaml", files)
            names[name] = f"mmlu_{subject}{suffix}"
    elif benchmark == "gsm8k":
        files = {"test": source / "test.jsonl", "train": source / "train.jsonl"}
        names[_task_yaml(folder, "ref_gsm8k", tasks / "gsm8k" / "gsm8k.yaml", files)] = "gsm8k"
    elif benchmark == "hellaswag":
        files = {"validation": source / "validation.jsonl", "train": source / "train.jsonl"}
        names[_task_yaml(folder, "ref_hellaswag", tasks / "hellaswag" / "hellaswag.yaml",
                         files)] = "hellaswag"
    elif benchmark == "truthfulqa":
        files = {"validation": source / "validation.jsonl"}
        for variant in ("mc1", "mc2"):
            name = _task_yaml(folder, f"ref_truthfulqa_{variant}",
                              tasks / "truthfulqa" / f"truthfulqa_{variant}.yaml", files)
            names[name] = f"truthfulqa_{variant}"
    else:
        raise ValueError(benchmark)
    return names


def run_cli(base_url: str, model: str, tokenizer: Path | None, tasks: dict[str, str],
            include: Path, out: Path, *, concurrency: int = 1, tokenized_requests: bool = False,
            extra: list[str] = (), timeout: float = 900) -> tuple[dict, dict[str, list[dict]]]:
    """Run `lm_eval` (local-completions) offline; return (results, samples by KITT task)."""
    model_args = [f"base_url={base_url}/v1/completions", f"model={model}",
                  f"num_concurrent={concurrency}", f"tokenized_requests={tokenized_requests}"]
    if tokenizer is not None:
        model_args += ["tokenizer_backend=huggingface", f"tokenizer={tokenizer}"]
    else:
        model_args += ["tokenizer_backend=None"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    argv = [sys.executable, "-m", "lm_eval", "--model", "local-completions",
            "--model_args", ",".join(model_args), "--tasks", ",".join(tasks),
            "--include_path", str(include), "--log_samples", "--output_path", str(out),
            *extra]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise AssertionError(f"lm_eval failed ({done.returncode}):\n{done.stderr[-4000:]}")
    results_file = sorted(out.rglob("results_*.json"))[-1]
    results = json.loads(results_file.read_text())
    samples: dict[str, list[dict]] = {}
    for ref_name, kitt_name in tasks.items():
        files = sorted(out.rglob(f"samples_{ref_name}_*.jsonl"))
        samples[kitt_name] = [json.loads(line) for line in files[-1].read_text().splitlines()]
    results["results"] = {tasks.get(k, k): v for k, v in results["results"].items()}
    return results, samples
