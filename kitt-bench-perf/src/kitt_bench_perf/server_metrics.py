"""Scrapes an engine's Prometheus `/metrics` in a background thread while a benchmark
runs, and keeps the time series (queue depth, KV-cache use, server token counters).

Parsing uses prometheus-client's `text_string_to_metric_families`; it is imported when a
scraper is created, never at plugin load. Timestamps are `perf_counter_ns`, the clock of
the request records, so series line up with the measurement window.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.error
import urllib.request
from typing import Any

# Canonical name -> the engine series that mean it (vLLM, llama-server, TGI), first found
# wins. Engines rename metrics between versions, so several names are listed.
KEY_SERIES: dict[str, tuple[str, ...]] = {
    "queue_depth": ("vllm:num_requests_waiting", "llamacpp:requests_deferred",
                    "tgi_queue_size"),
    "requests_running": ("vllm:num_requests_running", "llamacpp:requests_processing",
                         "tgi_batch_current_size"),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
                       "llamacpp:kv_cache_usage_ratio"),
    "generation_tokens_total": ("vllm:generation_tokens_total",
                                "llamacpp:tokens_predicted_total",
                                "tgi_request_generated_tokens_sum"),
    "prompt_tokens_total": ("vllm:prompt_tokens_total", "llamacpp:prompt_tokens_total",
                            "tgi_request_input_length_sum"),
}
_KEPT_TYPES = ("gauge", "counter", "unknown", "untyped")
_KEPT_SUFFIXES = ("_sum", "_count")  # of histograms and summaries; buckets are dropped


def parse_metrics(text: str) -> dict[str, float]:
    """Series name (`name{label="v",...}`) -> value for gauges, counters, untyped samples,
    and the `_sum`/`_count` of histograms and summaries. NaN values are dropped."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        keep_all = family.type in _KEPT_TYPES
        for sample in family.samples:
            if not keep_all and not sample.name.endswith(_KEPT_SUFFIXES):
                continue
            if sample.name.endswith(("_created", "_bucket")):
                continue
            value = float(sample.value)
            if not math.isfinite(value):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = value
    return values


class ServerMetricsScraper:
    """`with ServerMetricsScraper(url, 1.0) as s: ...` scrapes at start, every
    `interval_s`, and at the end. Failures are counted, never raised: server metrics are
    an addition to a benchmark, not a condition of it."""

    def __init__(self, url: str, interval_s: float = 1.0, *, timeout_s: float = 5.0,
                 max_series: int = 200) -> None:
        import prometheus_client.parser  # noqa: F401  (fail here, not in the thread)

        self.url = url
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_series = max_series
        self.samples: list[tuple[int, dict[str, float]]] = []
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ServerMetricsScraper:
        self.scrape_once()
        self._thread = threading.Thread(target=self._loop, name="kitt-metrics-scraper",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)
        self.scrape_once()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.scrape_once()

    def scrape_once(self) -> None:
        t = time.perf_counter_ns()
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as response:
                text = response.read().decode("utf-8", "replace")
            self.samples.append((t, parse_metrics(text)))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            key = f"{type(exc).__name__}: {exc}"[:200]
            self.errors[key] = self.errors.get(key, 0) + 1

    def series(self, t0_ns: int) -> dict[str, list[list[float]]]:
        """Series name -> [[t_s from t0_ns, value], ...]; at most `max_series` series
        (the key series first, then by name)."""
        names: dict[str, None] = {}
        for _, values in self.samples:
            names.update(dict.fromkeys(values))
        key_names = [n for n in self.key_series_names().values()]
        ordered = key_names + sorted(n for n in names if n not in key_names)
        out: dict[str, list[list[float]]] = {}
        for name in ordered[:self.max_series]:
            out[name] = [[round((t - t0_ns) / 1e9, 4), values[name]]
                         for t, values in self.samples if name in values]
        return out

    def key_series_names(self) -> dict[str, str]:
        """Canonical name -> the engine's series name, for those this engine exposes."""
        seen: set[str] = set()
        for _, values in self.samples:
            seen.update(values)
        found = {}
        for canonical, candidates in KEY_SERIES.items():
            name = next((c for c in candidates if c in seen), None)
            if name is not None:
                found[canonical] = name
        return found

    def details(self, t0_ns: int) -> dict[str, Any]:
        return {"url": self.url, "interval_s": self.interval_s, "scrapes": len(self.samples),
                "errors": dict(self.errors), "t0": "measurement window start",
                "key_series": self.key_series_names(), "series": self.series(t0_ns)}

    def key_metrics(self) -> list[tuple[str, float]]:
        """(metric name, value): server-side counterparts of the client metrics, named as
        in the benchmarks' catalogue (`server_generation_tokens`, `server_*_max`)."""
        names = self.key_series_names()
        out: list[tuple[str, float]] = []
        for canonical in ("generation_tokens_total", "prompt_tokens_total"):
            if canonical in names:
                values = [v[names[canonical]] for _, v in self.samples
                          if names[canonical] in v]
                if len(values) >= 2:
                    label = canonical.replace("_total", "")
                    out.append((f"server_{label}", values[-1] - values[0]))
        for canonical in ("queue_depth", "requests_running", "kv_cache_usage"):
            if canonical in names:
                values = [v[names[canonical]] for _, v in self.samples
                          if names[canonical] in v]
                if values:
                    out.append((f"server_{canonical}_max", max(values)))
        return out
