"""Warmup: a few short requests after health, before measuring, so the first benchmark
does not pay for lazy initialisation (graph capture, caches, allocator growth)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from kitt.errors import EngineFailed

# The smallest generation request of each API flavour: (path, body).
REQUESTS = {
    "openai": lambda model, n: ("/v1/completions",
                                {"model": model, "prompt": "Hello", "max_tokens": n,
                                 "temperature": 0}),
    "ollama": lambda model, n: ("/api/generate",
                                {"model": model, "prompt": "Hello", "stream": False,
                                 "options": {"num_predict": n, "temperature": 0}}),
    "tgi": lambda model, n: ("/generate",
                             {"inputs": "Hello", "parameters": {"max_new_tokens": n}}),
}


def warm_up(base_url: str, api: str, model: str, *, requests: int, max_tokens: int,
            timeout_s: float = 300) -> list[float]:
    """Send `requests` sequential requests; return each one's seconds. A failing request
    means the engine cannot serve: EngineFailed."""
    import time

    path, body = REQUESTS[api](model, max_tokens)
    durations = []
    for _ in range(requests):
        start = time.perf_counter()
        _post(base_url + path, body, timeout_s)
        durations.append(time.perf_counter() - start)
    return durations


def _post(url: str, body: dict[str, Any], timeout_s: float) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise EngineFailed(f"warmup request to {url} failed: HTTP {exc.code}: {detail}",
                           hint="check the engine log and the model name") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EngineFailed(f"warmup request to {url} failed: {exc}",
                           hint="check that the engine is running and reachable") from None
