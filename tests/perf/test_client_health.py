"""The client's own health: connection set-up outside TTFT and E2E, the pool opened before
the load, and the client-limited verdict when KITT's client falls behind."""

from __future__ import annotations

import asyncio
import sys
import time

import attrs
import pytest
from support.scripted_server import ScriptedServer, timed_chat

from kitt import Route
from kitt_bench_perf import client as client_module
from kitt_bench_perf.client import Endpoint, StreamClient
from kitt_bench_perf.health import FIX, WorkerHealth, arrival_of, assess
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
    # A client late to write the request after connecting: that is not the engine's either.
    late = attrs.evolve(record, written_ns=35 * MS)
    assert request_metrics(late).ttft_ms == pytest.approx(5.0)
    assert request_metrics(late).e2e_ms == pytest.approx(55.0)
    assert late.connect_ns == 30 * MS
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
    # TTFT is the engine's 20 ms plus the loopback, not the 150 ms spent waiting.
    assert request_metrics(waited).ttft_ms < 100
    for record in (first, second):
        # The request left (written) after it had its connection.
        assert record.start_ns <= record.connected_ns <= record.written_ns == record.sent_ns
    # ...and before the server read it.
    assert waited.sent_ns <= max(r.received_ns for r in server.requests)
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


async def test_a_server_that_closes_preflights_keeps_none_and_the_load_still_runs() -> None:
    scripts = {"m": timed_chat(["a", "b"], ttft=0.001, gap=0.001)}
    async with ScriptedServer(scripts, close_preflights=True) as server:
        result = await run_load_async(endpoint(server, "m"), SPECS,
                                      LoadSpec(Concurrency(3), max_requests=6))
    assert len(server.preflights) == 3 and result.prewarmed == 0
    assert all(r.ok for r in result.records) and len(result.records) == 6
    # The requests opened connections of their own, after the closed preflights.
    assert server.connections == 3 + 3


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

def health(lag_ms: float, send_ms: float = 0.0, cpu: float = 0.2,
           scheduled: bool = False) -> WorkerHealth:
    return WorkerHealth(0, wall_ns=10_000 * MS, cpu_ns=round(cpu * 10_000 * MS),
                        loop_lag_ns=(round(lag_ms * MS),) * 200,
                        send_delay_ns=(round(send_ms * MS),) * 50, scheduled=scheduled)


def test_a_client_within_the_bound_is_not_limited() -> None:
    verdict = assess([health(0.4, 0.3, cpu=0.95)], bound_ms=2.0)
    assert not verdict.client_limited and verdict.warning is None
    assert verdict.details["loop_lag_ms"]["p99"] == pytest.approx(0.4)
    assert verdict.details["cpu_cores_max"] == pytest.approx(0.95)
    assert verdict.details["fix"] is None


@pytest.mark.parametrize(("workers", "words"), [
    ([health(7.0, cpu=0.97)], ["7.0 ms late", "bound 2 ms", "97% of a CPU core"]),
    ([health(7.0, cpu=0.3)], ["7.0 ms late", "waiting for a CPU"]),
    ([health(0.5, send_ms=4.0, scheduled=True)],
     ["requests went out 4.0 ms after their scheduled time", "less load than asked"]),
    ([health(0.5), health(9.0)], ["9.0 ms late"]),  # the worst process counts
])
def test_lag_over_the_bound_marks_the_result_client_limited(workers, words) -> None:
    verdict = assess(workers, bound_ms=2.0)
    assert verdict.client_limited and verdict.details["client_limited"]
    assert verdict.warning.startswith("client-limited: ")
    for word in words:
        assert word in verdict.warning
    assert verdict.warning.endswith(f"Fix: {FIX}") and "workers: N" in FIX


async def test_what_limits_a_result_depends_on_the_load_and_the_stamps() -> None:
    # A closed loop's late sends only mean a little less load: its latencies are timed
    # from the actual send, so they still hold.
    closed = assess([health(0.5, send_ms=4.0)], bound_ms=2.0)
    assert not closed.client_limited
    assert closed.details["send_delay_against"] == "previous request's end"
    assert closed.details["send_delay_ms"]["p99"] == pytest.approx(4.0)
    # Kernel stamps do not wait for the loop, but chunks that wait for one read share the
    # stamp of its last segment: a late loop still limits the result, and says why.
    kernel = assess([health(7.0)], bound_ms=2.0, arrival="kernel")
    assert kernel.client_limited and kernel.details["arrival_stamps"] == "kernel"
    assert "share the kernel's stamp of its last segment" in kernel.warning
    protocol = assess([health(7.0)], bound_ms=2.0, arrival="protocol")
    assert "so chunk and end stamps may be that late" in protocol.warning


def test_a_load_is_as_kernel_stamped_as_its_weakest_response() -> None:
    def record(arrival):
        return RequestRecord(index=0, start_ns=0, end_ns=1, outcome=Outcome.OK,
                             arrival=arrival)

    assert arrival_of([record("kernel"), record(None)]) == "kernel"
    assert arrival_of([record("kernel"), record("protocol")]) == "protocol"
    assert arrival_of([record("read"), record("kernel")]) == "read"
    assert arrival_of([]) is None


async def test_chunks_carry_the_kernels_receive_time(monkeypatch) -> None:
    """On Linux over TCP a chunk's stamp is when its bytes arrived, even when the client's
    loop gets to them much later: here the loop is blocked for 80 ms after the first read
    while the rest of the stream arrives."""
    feed = client_module.feed_stamped
    blocked: list[int] = []

    def blocking_feed(*args):
        if not blocked:
            time.sleep(0.08)  # the client thread's loop runs nothing meanwhile
            blocked.append(time.perf_counter_ns())
        return feed(*args)

    monkeypatch.setattr(client_module, "feed_stamped", blocking_feed)
    scripts = {"m": timed_chat(["a", "b"], ttft=0.01, gap=0.01)}
    async with ScriptedServer(scripts) as server:
        result = await asyncio.to_thread(run_load, endpoint(server, "m"), SPECS,
                                         LoadSpec(Concurrency(1), max_requests=1))
    [record] = result.records
    [served] = server.requests
    assert record.ok and len(record.chunk_ns) == 2
    if not sys.platform.startswith("linux"):
        pytest.skip("kernel receive timestamps are Linux's")
    assert record.arrival == "kernel"
    for stamp in (*record.chunk_ns, record.end_ns):
        # Within a millisecond of a server write, long before the loop was free again.
        assert any(0 <= stamp - w < 1 * MS for w in served.write_ns), (stamp, served.write_ns)
        assert stamp < blocked[0] - 40 * MS


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
    verdict = assess(result.client, bound_ms=2.0, arrival=arrival_of(result.records))
    assert verdict.client_limited
    assert verdict.details["loop_lag_ms"]["p99"] > 2.0
    assert "event loop got to events" in verdict.warning
