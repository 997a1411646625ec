"""long_context: needle-in-a-haystack retrieval and latency at several prompt lengths.

For each context length L (tokens, per the engine's tokenizer), needle depth p and trial,
the prompt is filler text with the sentence `The secret code is <5 digits>.` inserted
after a fraction p of the filler, then a question asking for the code; its total length
is L tokens (corrected until the tokenizer agrees, or as close as 4 tries get). A cell is
retrieved when the generated text contains the code. Lengths whose prompt plus
`max_tokens` exceed the engine's context are skipped (listed in details).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import attrs

from kitt import (
    BenchmarkContext,
    ItemRecord,
    Measurement,
    Metric,
    Target,
    Tokenizer,
    TokenizerError,
)
from kitt_bench_perf.benchmarks import catalog, common
from kitt_bench_perf.benchmarks.params import LongContextParams
from kitt_bench_perf.load import ClientOptions, LoadSpec, Sequential, run_load
from kitt_bench_perf.metrics import check_error_rate, request_metrics, summarize
from kitt_bench_perf.workload import RequestSpec

# Plain filler words: no digits, so the only number in the prompt is the code.
FILLER_WORDS = (
    "the", "river", "runs", "past", "an", "old", "mill", "where", "farmers", "bring",
    "grain", "each", "autumn", "and", "children", "watch", "boats", "drift", "under",
    "a", "stone", "bridge", "near", "quiet", "green", "fields", "while", "birds",
    "circle", "over", "tall", "trees", "clouds", "move", "slowly", "across", "sky",
)
QUESTION = "\n\nQuestion: What is the secret code?\nAnswer: The secret code is"


@attrs.frozen
class Cell:
    length: int
    position: float
    trial: int
    code: str
    prompt_tokens: int
    """The tokenizer's count of the built prompt (no BOS, no template)."""


def engine_context(target: Target) -> int | None:
    """The context the engine serves, in tokens: llama-server's /props `n_ctx`, vLLM's
    /v1/models `max_model_len`; None when it does not say."""
    for path, pick in (
        ("/props", lambda j: (j.get("default_generation_settings") or {}).get("n_ctx")),
        ("/v1/models", lambda j: (j.get("data") or [{}])[0].get("max_model_len")),
    ):
        try:
            value = pick(common.fetch_json(target.base_url + path))
        except (OSError, ValueError, AttributeError, IndexError, TypeError):
            continue
        if isinstance(value, int) and value > 0:
            return value
    return None


def filler_ids(tokenizer: Tokenizer, tokens: int, rng: random.Random) -> list[int]:
    """At least `tokens` tokens of plain sentences."""
    words: list[str] = []
    ids: list[int] = []
    while len(ids) < tokens:
        for _ in range(tokens // 4 + 16):
            sentence = " ".join(rng.choice(FILLER_WORDS) for _ in range(rng.randint(6, 14)))
            words.append(sentence.capitalize() + ".")
        ids = tokenizer.encode(" ".join(words))
    return ids


def build_prompt(tokenizer: Tokenizer, filler: list[int], length: int, position: float,
                 needle: str) -> tuple[str, int]:
    """(prompt, its token count) for a haystack of `length` tokens with `needle` at
    `position`; the filler is trimmed until the whole prompt counts `length` tokens."""
    fixed = len(tokenizer.encode(f" {needle} ")) + len(tokenizer.encode(QUESTION))
    budget = max(0, length - fixed)
    text, count = "", 0
    for _ in range(4):
        budget = max(0, min(budget, len(filler)))
        cut = round(position * budget)
        before = tokenizer.decode(filler[:cut]) if cut else ""
        after = tokenizer.decode(filler[cut:budget]) if budget > cut else ""
        text = f"{before} {needle} {after}".strip() + QUESTION
        count = len(tokenizer.encode(text))
        if count == length:
            break
        budget += length - count
    return text, count


def run(context: BenchmarkContext, params: LongContextParams) -> Measurement:
    target = context.target
    tokenizer, kind = common.prompt_tokenizer(target)
    max_context = params.max_context or engine_context(target)
    # Room for BOS/chat template tokens the server adds.
    fits = [L for L in params.context_lengths
            if max_context is None or L + params.max_tokens + 8 <= max_context]
    skipped = [L for L in params.context_lengths if L not in fits]
    rng = random.Random(context.seed)
    cells: list[Cell] = []
    specs: list[RequestSpec] = []
    if fits:
        try:
            filler = filler_ids(tokenizer, max(fits), rng)
        except TokenizerError as exc:
            raise common.KittError(f"long_context cannot build prompts: {exc}") from exc
        for length in fits:
            for position in params.positions:
                for trial in range(params.trials):
                    code = f"{rng.randint(10000, 99999)}"
                    text, count = build_prompt(tokenizer, filler, length, position,
                                               f"The secret code is {code}.")
                    cells.append(Cell(length, position, trial, code, count))
                    specs.append(RequestSpec(text, params.max_tokens, count))
    if not specs:
        raise common.KittError(
            f"every context length exceeds the engine's context ({max_context} tokens)",
            hint="set long_context's context_lengths below it, or max_context")
    endpoint = common.endpoint_for(target, params.endpoint, ignore_eos=False,
                                   temperature=0.0)
    context.progress(0, len(specs))
    result = run_load(endpoint, specs, LoadSpec(Sequential(), max_requests=len(specs)),
                      ClientOptions(timeout_s=params.timeout_s))
    context.progress(len(specs), len(specs))
    records = common.count_missing_tokens(result.records, tokenizer, kind)
    summary = summarize(records)
    t0 = summary.window_start_ns or result.t0_ns
    rows: list[dict[str, Any]] = []
    items: list[ItemRecord] = []
    for cell, record in zip(cells, records, strict=True):
        m = request_metrics(record) if record.ok else None
        found = bool(record.ok and record.text and cell.code in record.text)
        rows.append({"context_tokens": cell.length, "position": cell.position,
                     "trial": cell.trial, "prompt_tokens": cell.prompt_tokens,
                     "server_prompt_tokens": record.input_tokens if
                     record.input_tokens_source and record.input_tokens_source.value == "usage"
                     else None,
                     "retrieved": found, "ok": record.ok,
                     "ttft_ms": m.ttft_ms if m else None, "e2e_ms": m.e2e_ms if m else None,
                     "error": record.error})
        items.append(ItemRecord(item_id=f"ctx{cell.length}-pos{cell.position}-t{cell.trial}",
                                correct=found, target=cell.code,
                                output=(record.text or "")[:200],
                                subject=f"ctx{cell.length}",
                                scores={"position": cell.position}))
    metrics, by_length = _aggregate(rows)
    check = check_error_rate(summary, params.max_error_rate)
    details = {"max_context": max_context, "context_lengths": fits, "skipped_lengths": skipped,
               "positions": params.positions, "trials": params.trials,
               "prompt_tokenizer": kind, "api": endpoint.route.value,
               "needle": "The secret code is <5 digits>.", "question": QUESTION,
               "by_length": by_length, "cells": rows, "summary": summary.to_dict(),
               "checks": [attrs.asdict(check)]}
    return Measurement(metrics=tuple(metrics), passed=check.passed,
                       requests=tuple(common.request_samples(records, t0)),
                       items=tuple(items), details=common.jsonable(details))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _aggregate(rows: list[dict[str, Any]]) -> tuple[list[Metric], dict[str, Any]]:
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["context_tokens"]].append(row)
    metrics = [catalog.ACCURACY(100.0 * sum(r["retrieved"] for r in rows) / len(rows))]
    by_length: dict[str, Any] = {}
    for length in sorted(groups):
        group = groups[length]
        acc = 100.0 * sum(r["retrieved"] for r in group) / len(group)
        ttft = _mean([r["ttft_ms"] for r in group if r["ttft_ms"] is not None])
        e2e = _mean([r["e2e_ms"] for r in group if r["e2e_ms"] is not None])
        positions: dict[float, list[bool]] = defaultdict(list)
        for r in group:
            positions[r["position"]].append(r["retrieved"])
        by_length[str(length)] = {
            "accuracy_pct": acc, "ttft_ms_mean": ttft, "e2e_ms_mean": e2e,
            "prompt_tokens_mean": _mean([r["prompt_tokens"] for r in group]),
            "by_position": {str(p): 100.0 * sum(v) / len(v) for p, v in positions.items()}}
        metrics.append(catalog.LENGTH_ACCURACY(acc, length=length))
        if ttft is not None:
            metrics.append(catalog.LENGTH_TTFT(ttft, length=length))
        if e2e is not None:
            metrics.append(catalog.LENGTH_E2E(e2e, length=length))
    longest = by_length[str(max(groups))]
    if longest["ttft_ms_mean"] is not None:
        metrics.append(catalog.TTFT_MAX_LENGTH(longest["ttft_ms_mean"]))
    return metrics, by_length
