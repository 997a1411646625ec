"""What the perf benchmarks share: the endpoint for a target, the prompt tokenizer, the
synthetic workload, running a load beside the /metrics scraper, and turning a `Summary`
into KITT metrics, request samples and details.

Imported inside `Benchmark.run` only (it pulls in aiohttp and numpy).
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import kitt
from kitt import BadInput, Metric, RequestSample, Target, Tokenizer, TokenizerError
from kitt_bench_perf.benchmarks import catalog
from kitt_bench_perf.benchmarks.params import LoadParams
from kitt_bench_perf.client import Endpoint
from kitt_bench_perf.load import ClientOptions, LoadSpec, RunResult, run_load
from kitt_bench_perf.metrics import NS_PER_MS, SLO, Summary, request_metrics
from kitt_bench_perf.records import RequestRecord, TokenSource
from kitt_bench_perf.server_metrics import ServerMetricsScraper
from kitt_bench_perf.tokenizer import HFTokenizer
from kitt_bench_perf.workload import LengthDist, RequestSpec, synthetic_requests

# -- target -> endpoint ------------------------------------------------------------------

def endpoint_for(target: Target, endpoint: str, *, ignore_eos: bool = True,
                 temperature: float | None = None) -> Endpoint:
    """openai: completions (or chat); ollama: /api/generate (or /api/chat); tgi: its
    OpenAI-compatible Messages API (/v1/chat/completions), or with `generate_stream` its
    native /generate_stream. `generate_stream` is refused for any other API."""
    if endpoint == "generate_stream" and target.api != "tgi":
        raise BadInput(f"endpoint 'generate_stream' is TGI's native API; this target's API "
                       f"is {target.api!r}",
                       hint="use endpoint: completions or chat (generate_stream needs a "
                            "tgi engine)")
    try:
        route = kitt.route_for(target.api, chat=endpoint == "chat",
                               native=endpoint == "generate_stream")
    except ValueError:
        raise kitt.KittError(f"kitt-bench-perf cannot drive API {target.api!r}",
                             hint="supported APIs: openai, ollama, tgi") from None
    return Endpoint(target.base_url, target.model, route, ignore_eos=ignore_eos,
                    include_usage=True, temperature=temperature)


# -- tokenizer ----------------------------------------------------------------------------

class WordTokenizer:
    """Last resort when neither the engine nor a local tokenizer.json can tokenize: one
    "token" per whitespace-separated word. Prompt lengths are then approximate (the
    server's usage, when reported, still gives the true input count)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._words: list[str] = []

    def encode(self, text: str) -> list[int]:
        out = []
        for word in text.split():
            if word not in self._ids:
                self._ids[word] = len(self._words)
                self._words.append(word)
            out.append(self._ids[word])
        return out

    def decode(self, ids: list[int]) -> str:
        return " ".join(self._words[i] for i in ids)


def prompt_tokenizer(target: Target) -> tuple[Tokenizer, str]:
    """(tokenizer, kind): the engine's own tokenizer when it has one that can also
    detokenize, else the model folder's tokenizer.json, else whitespace words. `kind`
    goes into details."""
    if target.tokenize is not None and target.tokenize.detokenize_path is not None:
        engine = kitt.EngineTokenizer(target.base_url, target.tokenize, target.model,
                                      timeout_s=30)
        try:
            if engine.encode("hello world") and engine.decode(engine.encode("hello")).strip():
                return engine, f"engine {target.tokenize.path}"
        except TokenizerError:
            pass
    path = target.model_path
    for folder in (path, path.parent) if path is not None else ():
        if (Path(folder) / "tokenizer.json").is_file():
            try:
                return HFTokenizer(folder), f"tokenizer.json ({folder})"
            except TokenizerError:
                break
    return WordTokenizer(), "words (approximate)"


def synthetic_workload(tokenizer: Tokenizer, count: int, prompt_tokens: int,
                       max_tokens: int, seed: int) -> list[RequestSpec]:
    # Distinct prompts defeat prefix caches; beyond 64 the run cycles through them, which
    # bounds preparation time (each prompt costs a few /tokenize calls).
    return synthetic_requests(tokenizer, min(count, 64), LengthDist(prompt_tokens),
                              LengthDist(max_tokens), seed=seed)


# -- running a load -------------------------------------------------------------------------

def metrics_url(target: Target) -> str | None:
    return None if not target.metrics_path else target.base_url + target.metrics_path


def run_measured(target: Target, endpoint: Endpoint, specs: Sequence[RequestSpec],
                 load: LoadSpec, *, timeout_s: float, scrape_interval_s: float,
                 prewarm_connections: bool = True
                 ) -> tuple[RunResult, ServerMetricsScraper | None]:
    """Run `load`, scraping the engine's /metrics meanwhile when asked."""
    url = metrics_url(target)
    scraper = (ServerMetricsScraper(url, scrape_interval_s)
               if url and scrape_interval_s > 0 else None)
    options = ClientOptions(timeout_s=timeout_s, prewarm_connections=prewarm_connections)
    if scraper is None:
        return run_load(endpoint, specs, load, options), None
    with scraper:
        result = run_load(endpoint, specs, load, options)
    return result, scraper


def count_missing_tokens(records: Sequence[RequestRecord], tokenizer: Tokenizer,
                         kind: str) -> tuple[RequestRecord, ...]:
    """Output counts from the tokenizer where the stream carried no usage (the client
    then counted chunks); a word tokenizer is no better than chunks, so it is not used."""
    if kind.startswith("words") or not any(
            r.output_tokens_source is TokenSource.CHUNKS for r in records):
        return tuple(records)
    from kitt_bench_perf.tokenizer import count_output_tokens

    try:
        return tuple(count_output_tokens(records, tokenizer))
    except TokenizerError:
        return tuple(records)


def slo_of(params: LoadParams) -> SLO | None:
    limits = (params.slo_ttft_ms, params.slo_tpot_ms, params.slo_itl_ms, params.slo_e2e_ms)
    if all(limit is None for limit in limits):
        return None
    return SLO(ttft_ms=params.slo_ttft_ms, tpot_ms=params.slo_tpot_ms,
               itl_ms=params.slo_itl_ms, e2e_ms=params.slo_e2e_ms)


# -- results ----------------------------------------------------------------------------------

def summary_metrics(summary: Summary) -> list[Metric]:
    """KITT metrics of a summary: counts, rates, and chosen statistics of each
    distribution, named `<distribution>_<stat>` (`ttft_ms_p99`, `itl_pooled_ms_p50`)."""
    out = [catalog.REQUESTS(summary.requests),
           catalog.ERRORED(summary.errored + summary.incomplete),
           catalog.ERROR_RATE(summary.error_rate), catalog.WINDOW(summary.window_s)]
    for name, spec in catalog.RATES.items():
        value = getattr(summary, name)
        if value is not None:
            out.append(spec(value))
    if summary.slo_met is not None and summary.requests:
        out.append(catalog.SLO_ATTAINMENT(100.0 * summary.slo_met / summary.requests))
    for field, specs in catalog.DISTRIBUTION_SPECS.items():
        dist = getattr(summary, field)
        if dist is not None:
            stats = catalog.DISTRIBUTIONS[field][3]
            out.extend(spec(getattr(dist, stat)) for spec, stat in zip(specs, stats,
                                                                       strict=True))
    return out


def request_samples(records: Iterable[RequestRecord], t0_ns: int) -> list[RequestSample]:
    """Measured requests, times in ms from `t0_ns` (the measurement window's start)."""
    out = []
    for r in records:
        if r.warmup:
            continue
        m = request_metrics(r) if r.ok else None
        out.append(RequestSample(
            start_ms=(r.start_ns - t0_ns) / NS_PER_MS, ok=r.ok,
            ttft_ms=m.ttft_ms if m else None, e2e_ms=m.e2e_ms if m else None,
            itl_mean_ms=m.itl_request_mean_ms if m else None,
            input_tokens=r.input_tokens, output_tokens=r.output_tokens,
            error=None if r.ok else (r.error or r.outcome.value)))
    return out


def token_counting(records: Iterable[RequestRecord], prompt_tokenizer: str) -> dict[str, Any]:
    measured = [r for r in records if not r.warmup]

    def sources(attr: str) -> dict[str, int]:
        return dict(Counter(getattr(r, attr).value if getattr(r, attr) else "unknown"
                            for r in measured).most_common())

    return {"output": sources("output_tokens_source"), "input": sources("input_tokens_source"),
            "prompt_tokenizer": prompt_tokenizer}


def load_details(result: RunResult) -> dict[str, Any]:
    load = result.load
    profile = load.profile
    return {"profile": load.name,
            "concurrency": getattr(profile, "users", 1 if load.name == "sequential" else None),
            "rate": getattr(profile, "rate", None),
            "max_requests": load.max_requests, "duration_s": load.duration_s,
            "warmup_requests": load.warmup_requests, "workers": load.workers,
            "event_loop": result.event_loop, "prewarmed_connections": result.prewarmed}


def workload_details(specs: Sequence[RequestSpec]) -> dict[str, Any]:
    inputs = [s.input_tokens for s in specs if s.input_tokens is not None]
    return {"distinct_prompts": len(specs),
            "prompt_tokens": sorted(set(inputs)) if len(set(inputs)) <= 8 else
            {"min": min(inputs), "max": max(inputs)},
            "max_tokens": sorted({s.output_tokens for s in specs if s.output_tokens})}


def jsonable(value: Any) -> Any:
    """Details must be strict JSON: NaN/inf become None, tuples lists, keys strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def fetch_json(url: str, timeout_s: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())
