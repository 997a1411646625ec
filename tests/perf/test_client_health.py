"""The client's own health: connection set-up outside TTFT and E2E, the pool opened before
the load, and the client-limited verdict when KITT's client falls behind."""

from __future__ import annotations

import asyncio
import time

import pytest
from support.scripted_server import ScriptedServer, timed_chat

from kitt import Route
from kitt_bench_perf import client as client_module
from kitt_bench_perf.client import Endpoint, StreamClient
from kitt_bench_perf.health import FIX, WorkerHealth, assess
from kitt_bench_perf.load import (
    ClientOptions,
    Concurrency,
    LoadSpec,
    run_load,
    run_load_async,
)
from kitt_bench_perf.metrics import request_metrics, summarize
from kitt_bench_perf.records import Outcome, RequestRecord
from kitt_bench_perf.workload import RequestSpec

MS = 1_000_000
SPECS = [RequestSpec("prompt", 4, 3)]


def endpoint(server: ScriptedServer, model: str) -> Endpoint:
    return Endpoint(server.base_url, model, route=Route.OPENAI_CHAT)


# -- connection set-up ----------------------------------------------------------------------

def test_ttft_and_e2e_start_when_the_request_has_its_connection() -> None:
    record = RequestRecord(index=0, start_ns=0, end_ns=90 * MS, outcome=Outcome.OK,
                           chunk_ns=(40 * MS, 90 * MS), output_tokens=2,
                           connected_ns=30 * MS)
    metrics = request_metrics(record)
    assert record.connect_ns == 30 * MS
    assert metrics.ttft_ms == pytest.approx(10.0)
    assert metrics.e2e_ms == pytest.approx(60.0)
    # Without a connection stamp (tracing did not report it), the start stamp is used.
    unknown = RequestRecord(index=0, start_ns=0, end_ns=90 * MS, outcome=Outcome.OK,
                            chunk_ns=(40 * MS, 90 * MS), output_tokens=2)
    assert unknown.connect_ns is None and request_metrics(unknown).ttft_ms == 40.0


async def test_a_wait_for_a_pooled_connection_is_connect_time_not_engine_time() -> None:
    # One connection, two requests at once: the second waits for the first to finish
    # (about 150 ms) before it is sent. The engine then takes 20 ms to its first token.
    scripts = {"m": timed_chat(["a", "b"], ttft=0.02, gap=0.13)}
    async with ScriptedServer(scripts) as server, \
            StreamClient(endpoint(server, "m"), max_connections=1) as client:
        request = client.prepare(SPECS[0])
        first, second = await asyncio.gather(client.send(request, 0), client.send(request, 1))
    assert first.ok and second.ok
    waited = max(first, second, key=lambda r: r.connect_ns)
    assert waited.connect_ns > 100 * MS
    served = server.requests[1]
    # TTFT is the engine's 20 ms plus the loopback, not the 150 ms spent waiting.
    assert request_metrics(waited).ttft_ms < 100
    assert waited.sent_ns <= served.received_ns
    summary = summarize([first, second])
    assert summary.connect_ms is not None and summary.connect_ms.max > 100


async def test_the_pool_is_opened_before_the_first_request() -> None:
    async with ScriptedServer({"m": timed_chat(["a", "b"], ttft=0.001, gap=0.001)}) as server:
        result = await run_load_async(endpoint(server, "m"), SPECS,
                                      LoadSpec(Concurrency(6), max_requests=18))
    assert result.prewarmed == 6
    assert len(server.preflights) == 6 and server.connections == 6
    first_post = min(r.received_ns for r in server.requests)
    assert max(server.preflights) < first_post
    assert max(server.connected_ns) < first_post  # no request connected cold
    assert all(r.ok and r.connect_ns is not None for r in result.records)


async def test_prewarm_off_connects_as_requests_go() -> None:
    async with ScriptedServer({"m": timed_chat(["a", "b"], ttft=0.001, gap=0.001)}) as server:
        result = await run_load_async(endpoint(server, "m"), SPECS,
                                      LoadSpec(Concurrency(4), max_requests=8),
                                      ClientOptions(prewarm_connections=False))
    assert result.prewarmed == 0 and server.preflights == []
    first_post = min(r.received_ns for r in server.requests)
    assert max(server.connected_ns) > min(r.start_ns for r in result.records)
    assert first_post > min(server.connected_ns)
    assert all(r.connect_ns is not None for r in result.records)


# -- the verdict ----------------------------------------------------------------------------

def health(lag_ms: float, send_ms: float = 0.0, cpu: float = 0.2) -> WorkerHealth:
    return WorkerHealth(0, wall_ns=10_000 * MS, cpu_ns=round(cpu * 10_000 * MS),
                        loop_lag_ns=(round(lag_ms * MS),) * 200,
                        send_delay_ns=(round(send_ms * MS),) * 50)


def test_a_client_within_the_bound_is_not_limited() -> None:
    verdict = assess([health(0.4, 0.3, cpu=0.95)], bound_ms=2.0)
    assert not verdict.client_limited and verdict.warning is None
    assert verdict.details["loop_lag_ms"]["p99"] == pytest.approx(0.4)
    assert verdict.details["cpu_cores_max"] == pytest.approx(0.95)
    assert verdict.details["fix"] is None


@pytest.mark.parametrize(("workers", "words"), [
    ([health(7.0, cpu=0.97)], ["7.0 ms late", "bound 2 ms", "97% of a CPU core"]),
    ([health(7.0, cpu=0.3)], ["7.0 ms late", "waiting for a CPU"]),
    ([health(0.5, send_ms=4.0)], ["requests went out 4.0 ms after they were due"]),
    ([health(0.5), health(9.0)], ["9.0 ms late"]),  # the worst process counts
])
def test_lag_over_the_bound_marks_the_result_client_limited(workers, words) -> None:
    verdict = assess(workers, bound_ms=2.0)
    assert verdict.client_limited and verdict.details["client_limited"]
    assert verdict.warning.startswith("client-limited: ")
    for word in words:
        assert word in verdict.warning
    assert verdict.warning.endswith(f"Fix: {FIX}") and "workers: N" in FIX


async def test_an_overloaded_client_is_flagged(monkeypatch) -> None:
    """A client that spends 3 ms of CPU on every piece of every stream cannot keep up with
    16 streams: its own measurement must say so."""
    feed = client_module.feed_stamped

    def slow_feed(*args):
        until = time.perf_counter_ns() + 3 * MS
        while time.perf_counter_ns() < until:  # a busy client, not a sleeping one
            pass
        return feed(*args)

    monkeypatch.setattr(client_module, "feed_stamped", slow_feed)
    scripts = {"m": timed_chat(["a"] * 8, ttft=0.002, gap=0.002)}
    async with ScriptedServer(scripts) as server:
        # The client in a thread and event loop of its own, as `kitt run` runs it.
        result = await asyncio.to_thread(run_load, endpoint(server, "m"), SPECS,
                                         LoadSpec(Concurrency(16), max_requests=64))
    assert all(r.ok for r in result.records)
    verdict = assess(result.client, bound_ms=2.0)
    assert verdict.client_limited
    assert verdict.details["loop_lag_ms"]["p99"] > 2.0
    assert "event loop got to events" in verdict.warning
