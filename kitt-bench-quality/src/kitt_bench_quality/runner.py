"""Running one quality benchmark: choose the scoring mode, build lm-eval tasks, evaluate
through lm-eval against the engine, and turn lm-eval's results into a KITT Measurement."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

import kitt
from kitt import BadInput, BenchmarkContext, ItemRecord, KittError, Measurement, Metric
from kitt_bench_quality import capability, tokenizer
from kitt_bench_quality.tasks import TaskPlan

PlanBuilder = Callable[[Any, str, Path], TaskPlan]

LOGLIKELIHOOD = "loglikelihood"
GENERATIVE = "generative"
PROBE_TEXT = "The quick brown fox jumps over the lazy dog."
"""Tokenized to find out whether the engine takes token-id prompts."""


def choose_mode(name: str, requested: str, modes: tuple[str, ...], target: Any,
                timeout: float) -> tuple[str, str]:
    """The scoring mode, and why. Fails when a forced mode cannot be served."""
    if requested not in ("auto", *modes):
        raise BadInput(f"{name}: scoring_mode {requested!r} is not available for this "
                       f"benchmark", hint=f"use one of: auto, {', '.join(modes)}")
    if modes == (GENERATIVE,):
        return GENERATIVE, "generative benchmark"
    if requested == GENERATIVE:
        return GENERATIVE, "requested"
    supported, detail = kitt.probe_prompt_logprobs(target.base_url, target.model,
                                                   timeout=timeout)
    if supported:
        return LOGLIKELIHOOD, f"engine returns prompt logprobs ({detail})"
    if requested == LOGLIKELIHOOD:
        raise BadInput(
            f"{name}: scoring_mode loglikelihood needs prompt logprobs, but the engine "
            f"{target.engine} at {target.base_url} does not return them: {detail}",
            hint="use scoring_mode: generative (or auto), or an engine with echo+logprobs "
                 "(vLLM, TGI, llama-cpp-python)")
    if GENERATIVE not in modes:
        raise BadInput(f"{name} needs prompt logprobs, which {target.engine} does not return: "
                       f"{detail}", hint="use an engine with echo+logprobs")
    return GENERATIVE, f"engine lacks prompt logprobs ({detail})"


def _quiet_lm_eval() -> None:
    for name in ("lm_eval", "lm-eval", "httpx", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load_tasks(plan: TaskPlan, dataset_setting: str | None) -> dict[str, Any]:
    """lm-eval Task objects (this loads the data). Missing data becomes a clear error."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False)
    try:
        loaded = manager.load(plan.configs)
    except KittError:
        raise
    except Exception as exc:
        if dataset_setting is None and _looks_like_download_failure(exc):
            from kitt_bench_quality.data import offline_error

            raise offline_error(plan.dataset, exc, "the `dataset` parameter") from None
        if dataset_setting is not None:
            raise BadInput(f"cannot read local dataset {dataset_setting}: "
                           f"{type(exc).__name__}: {exc}",
                           hint="check the files against the schema in docs/quality.md") from None
        raise
    return loaded["tasks"]


def _looks_like_download_failure(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    markers = ("offline", "connection", "couldn't reach", "could not reach", "not found",
               "doesn't exist", "does not exist", "hub", "max retries", "resolve", "timed out")
    return isinstance(exc, ConnectionError | OSError) or any(m in text for m in markers)


def seeded_sample(tasks: dict[str, Any], limit: int | None,
                  seed: int) -> dict[str, list[int]] | None:
    """`limit` items drawn uniformly across all tasks with `seed` (None: everything)."""
    if limit is None:
        return None
    population = [(name, index) for name in sorted(tasks)
                  for index in range(len(tasks[name].eval_docs))]
    if limit >= len(population):
        return None
    chosen = random.Random(seed).sample(population, limit)
    samples: dict[str, list[int]] = {name: [] for name in tasks}
    for name, index in chosen:
        samples[name].append(index)
    return {name: sorted(indices) for name, indices in samples.items()}


def evaluate(name: str, version: str, build: PlanBuilder, modes: tuple[str, ...],
             context: BenchmarkContext, params: Any) -> Measurement:
    _quiet_lm_eval()
    started = time.monotonic()
    target = context.target
    mode, why = choose_mode(name, params.scoring_mode, modes, target, params.timeout_s)
    out_dir = Path(context.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = build(params, mode, out_dir)

    # Tokenizer: loglikelihood needs one to find where the continuation starts.
    choice = tokenizer.choose(params.tokenizer, target.model_path)
    hf_tokenizer = tokenizer.load_hf(choice.folder) if choice.kind == "huggingface" else None
    engine_tokenizer = None
    if choice.kind == "engine" and mode == LOGLIKELIHOOD:
        engine_tokenizer = tokenizer.engine_tokenizer(target, timeout=params.timeout_s)
    if params.chat_template and hf_tokenizer is None:
        raise BadInput(f"{name}: chat_template: true needs the model's tokenizer folder "
                       "(its chat template)", hint="set `tokenizer:` to the model's HF folder")

    token_prompts = False
    if mode == LOGLIKELIHOOD:
        probe_tokens = (hf_tokenizer(PROBE_TEXT, add_special_tokens=False)
                        ["input_ids"] if hf_tokenizer is not None
                        else engine_tokenizer.encode(PROBE_TEXT))
        token_prompts = capability.probe_token_prompts(target.base_url, target.model,
                                                       probe_tokens, timeout=params.timeout_s)

    tasks = load_tasks(plan, params.dataset)
    samples = seeded_sample(tasks, params.limit, params.seed)

    settings = {
        "limit": params.limit, "seed": params.seed, "num_fewshot": params.num_fewshot,
        "concurrency": params.concurrency, "max_tokens": params.max_tokens,
        "chat_template": params.chat_template, "scoring_mode": mode,
        "scoring_mode_requested": params.scoring_mode, "scoring_mode_reason": why,
        "dataset": str(params.dataset) if params.dataset else plan.dataset,
        "tokenizer": choice.description if (hf_tokenizer or engine_tokenizer) else None,
        "tokenized_requests": token_prompts,
    }
    from kitt_bench_quality.checkpoint import Checkpoint

    checkpoint = Checkpoint(
        out_dir / "checkpoint.jsonl",
        {"benchmark": name, "version": version, "url": target.base_url, "model": target.model,
         "settings": settings, "params": attrs.asdict(params)},
        resume=params.resume)
    try:
        results = _run_lm_eval(tasks, samples, params, mode, target, choice, hf_tokenizer,
                               engine_tokenizer, token_prompts, checkpoint, context)
    finally:
        checkpoint.close()
    measurement = to_measurement(plan, results, mode, settings, tasks, params)
    measurement.details["reused_requests"] = checkpoint.reused
    measurement.details["wall_s"] = round(time.monotonic() - started, 3)
    _write_tasks(out_dir, plan)
    return measurement


def _run_lm_eval(tasks, samples, params, mode, target, choice, hf_tokenizer, engine_tokenizer,
                 token_prompts, checkpoint, context) -> dict[str, Any]:
    import lm_eval

    from kitt_bench_quality.lmclient import ItemProgress, KittCompletions

    kwargs: dict[str, Any] = {
        "base_url": capability.completions_url(target.base_url),
        "model": target.model,
        "num_concurrent": params.concurrency,
        "tokenized_requests": token_prompts,
        "timeout": params.timeout_s,
        "max_retries": 3,
    }
    if hf_tokenizer is not None:
        kwargs.update(tokenizer_backend="huggingface", tokenizer=str(choice.folder))
    else:
        kwargs.update(tokenizer_backend=None)
    if params.max_tokens:
        kwargs["max_gen_toks"] = params.max_tokens
    lm = KittCompletions(checkpoint=checkpoint, progress=ItemProgress(context.progress),
                         engine_tokenizer=engine_tokenizer, chat_tokenizer=hf_tokenizer,
                         **kwargs)
    if engine_tokenizer is not None:
        lm.tokenized_requests = token_prompts
    results = lm_eval.simple_evaluate(
        model=lm, tasks=list(tasks.values()), num_fewshot=params.num_fewshot,
        samples=samples, log_samples=True, apply_chat_template=params.chat_template,
        task_manager=_empty_manager(),
    )
    if results is None:
        raise KittError("lm-eval returned no results")
    return results


def _empty_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=False)


# ---------------------------------------------------------------------------- results

def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def to_measurement(plan: TaskPlan, results: dict[str, Any], mode: str,
                   settings: dict[str, Any], tasks: dict[str, Any], params: Any) -> Measurement:
    from lm_eval.api.metrics import aggregate_subtask_metrics, pooled_sample_stderr

    task_results = results["results"]
    higher_is_better = results.get("higher_is_better") or {}
    sizes = {task: int(results["n-samples"][task]["effective"]) for task in plan.metrics}
    directions: dict[str, kitt.Direction] = {}
    by_name: dict[str, list[tuple[str, float, float | None]]] = {}
    for task, specs in plan.metrics.items():
        for spec in specs:
            metric, flt = spec.lm_key.split(",")
            value = _finite(task_results[task].get(spec.lm_key))
            stderr = _finite(task_results[task].get(f"{metric}_stderr,{flt}"))
            if value is not None:
                by_name.setdefault(spec.name, []).append((task, value, stderr))
            better = (higher_is_better.get(task) or {}).get(metric)
            if isinstance(better, bool):  # lm-eval's own word on each metric
                directions.setdefault(spec.name, "higher" if better else "lower")

    metrics: list[Metric] = []
    for metric_name, entries in by_name.items():
        values = [value for _, value, _ in entries]
        counts = [sizes[task] for task, _, _ in entries]
        if len(entries) == 1:
            value, stderr = values[0], entries[0][2]
        else:  # lm-eval's group aggregation: weighted by size, pooled standard error
            value = float(aggregate_subtask_metrics(values, counts, weight_by_size=True))
            stderrs = [s for _, _, s in entries]
            stderr = (_finite(pooled_sample_stderr(stderrs, counts))
                      if all(s is not None for s in stderrs) else None)
        metrics.append(Metric(metric_name, value, "", directions.get(metric_name)))
        if stderr is not None:  # the score's uncertainty: never a regression by itself
            metrics.append(Metric(f"{metric_name}_stderr", stderr, "", "neutral"))
    items = _items(plan, results)
    metrics.append(Metric("n_items", float(len({(i.subject, i.item_id) for i in items})), "",
                          "neutral"))

    details: dict[str, Any] = {
        "scoring_mode": mode,
        "settings": settings,
        "tasks": {task: {"n": sizes[task],
                         "num_fewshot": tasks[task].get_config("num_fewshot"),
                         **{spec.name: _finite(task_results[task].get(spec.lm_key))
                            for spec in specs}}
                  for task, specs in plan.metrics.items()},
        "lm_eval_version": _lm_eval_version(),
        "notes": list(plan.notes),
    }
    if plan.subjects:
        details["subjects"] = _breakdown(plan, task_results, sizes, plan.subjects)
        details["categories"] = _breakdown(plan, task_results, sizes, plan.categories)
    return Measurement(metrics=tuple(metrics), items=tuple(items), details=details)


def _breakdown(plan, task_results, sizes, group_of: dict[str, str]) -> dict[str, Any]:
    from lm_eval.api.metrics import aggregate_subtask_metrics, pooled_sample_stderr

    groups: dict[str, list[str]] = {}
    for task, group in group_of.items():
        groups.setdefault(group, []).append(task)
    out = {}
    for group, members in sorted(groups.items()):
        spec = plan.metrics[members[0]][0]
        metric, flt = spec.lm_key.split(",")
        values = [_finite(task_results[t].get(spec.lm_key)) for t in members]
        stderrs = [_finite(task_results[t].get(f"{metric}_stderr,{flt}")) for t in members]
        counts = [sizes[t] for t in members]
        if any(v is None for v in values) or sum(counts) == 0:
            continue
        value = float(aggregate_subtask_metrics(values, counts, weight_by_size=True))
        stderr = (stderrs[0] if len(members) == 1 else
                  _finite(pooled_sample_stderr(stderrs, counts))
                  if all(s is not None for s in stderrs) else None)
        out[group] = {spec.name: value, f"{spec.name}_stderr": stderr, "n": sum(counts)}
    return out


def _lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm-eval")


def _items(plan: TaskPlan, results: dict[str, Any]) -> list[ItemRecord]:
    items = []
    for task in plan.metrics:
        primary = plan.correct_filter(task)
        by_doc: dict[int, list[dict]] = {}
        for sample in results["samples"].get(task, []):
            by_doc.setdefault(int(sample["doc_id"]), []).append(sample)
        for doc_id in sorted(by_doc):
            samples = by_doc[doc_id]
            main = next((s for s in samples if s.get("filter", "none") == primary), samples[0])
            item = _item(task, main, plan.correct[task], plan)
            for other in samples:  # other filters' scores (e.g. gsm8k flexible-extract)
                if other is not main:
                    item.scores.update({f"{key},{other['filter']}": float(other[key])
                                        for key in other.get("metrics", [])
                                        if _finite(other.get(key)) is not None})
            items.append(item)
    return items


def _item(task: str, sample: dict[str, Any], correct_metric: str, plan: TaskPlan) -> ItemRecord:
    arguments = sample["arguments"]
    prompt = arguments[0][0] if arguments and arguments[0] else ""
    prompt = prompt if isinstance(prompt, str) else json.dumps(prompt, default=str)
    scores: dict[str, float] = {}
    for key in sample.get("metrics", []):
        value = _finite(sample.get(key))
        if value is not None:
            scores[key] = value
    resps = sample.get("filtered_resps") or []
    if resps and isinstance(resps[0], list | tuple) and len(resps[0]) == 2 and \
            isinstance(resps[0][0], int | float):
        # loglikelihood: one (logprob, is_greedy) per choice
        for index, (logprob, _) in enumerate(resps):
            scores[f"logprob_{index}"] = float(logprob)
        output = json.dumps({"choices": [arg[1] for arg in arguments],
                             "logprobs": [float(r[0]) for r in resps],
                             "greedy": [bool(r[1]) for r in resps]}, ensure_ascii=False)
    else:
        raw = sample.get("resps") or [[""]]
        output = json.dumps({"text": raw[0][0] if raw and raw[0] else "",
                             "extracted": resps[0] if resps else ""}, ensure_ascii=False,
                            default=str)
    target = sample.get("target")
    if isinstance(target, int) and arguments and target < len(arguments) and \
            len(arguments[target]) > 1:
        target = arguments[target][1]
    return ItemRecord(
        item_id=f"{task}/{sample['doc_id']}",
        correct=scores.get(correct_metric, 0.0) >= 0.5,
        target=str(target),
        prompt=prompt,
        output=output,
        subject=plan.subjects.get(task, task),
        scores=scores,
    )


def _write_tasks(out_dir: Path, plan: TaskPlan) -> None:
    """The lm-eval task configs used, for reproducing a run with lm-eval itself."""
    try:
        configs = [{k: (v.__name__ if callable(v) else v) for k, v in config.items()}
                   for config in plan.configs]
        (out_dir / "lm_eval_tasks.json").write_text(json.dumps(configs, indent=1, default=str))
    except OSError:
        pass
