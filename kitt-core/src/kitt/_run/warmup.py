"""Warmup: a few short requests after health, before measuring, so the first benchmark
does not pay for lazy initialisation (graph capture, caches, allocator growth).

Each is a streamed request on the engine's usual route, read to its end marker: the
same wire path the benchmarks take next."""

from __future__ import annotations

import time

from kitt._engines.streams import StreamParser, post_stream, request_body, route_for
from kitt.errors import EngineFailed

WARMUP_PROMPT = "Hello"


def warm_up(base_url: str, api: str, model: str, *, requests: int, max_tokens: int,
            timeout_s: float = 300) -> list[float]:
    """Send `requests` sequential requests; return each one's seconds. A failing request
    means the engine cannot serve: EngineFailed."""
    route = route_for(api)
    body = request_body(route, model, WARMUP_PROMPT, max_tokens=max_tokens, temperature=0,
                        include_usage=False)
    url = base_url.rstrip("/") + route.path
    durations = []
    for _ in range(requests):
        start = time.perf_counter()
        status, answer = post_stream(base_url, route, body, timeout_s)
        durations.append(time.perf_counter() - start)
        if not isinstance(answer, StreamParser):
            detail = f"HTTP {status}: {answer[:300]}" if status else answer
            raise EngineFailed(f"warmup request to {url} failed: {detail}",
                               hint="check the engine log, that it is reachable and the "
                                    "model name")
        if answer.outcome() != "ok":
            problem = answer.error or answer.missing_end_reason()
            raise EngineFailed(f"warmup request to {url} failed: {problem}",
                               hint="check the engine log and the model name")
    return durations
