"""Load profiles: send times follow the profile; limits, warmup, sweeps and workers."""

from __future__ import annotations

import asyncio
import itertools
import math
import multiprocessing
import statistics
import time

import pytest
from support.loop_lag import SLACK_MS, LoopLag
from support.scripted_server import Script, ScriptedServer, timed_chat

from kitt import Route
from kitt_bench_perf.client import Endpoint
from kitt_bench_perf.load import (
    ClientOptions,
    Concurrency,
    ConstantRate,
    LoadError,
    LoadSpec,
    PoissonRate,
    RunResult,
    Sequential,
    concurrency_sweep,
    rate_sweep,
    run_load,
    run_load_async,
)
from kitt_bench_perf.metrics import summarize
from kitt_bench_perf.records import Outcome
from kitt_bench_perf.workload import RequestSpec

MS = 1_000_000
SPECS = [RequestSpec(f"prompt {i}", 4, 2) for i in range(3)]


def scripts(ttft: float = 0.002, gap: float = 0.002) -> dict[str, Script]:
    return {"fast": timed_chat(["a", "b", "c"], ttft=0.0, gap=0.0),
            "timed": timed_chat(["a", "b", "c"], ttft=ttft, gap=gap),
            "slow": timed_chat(["a", "b"], ttft=0.5, gap=0.5),
            "stuck": timed_chat(["a", "b"], ttft=20, gap=0.5)}


async def run(server: ScriptedServer, load: LoadSpec, model: str = "fast",
              options: ClientOptions | None = None) -> RunResult:
    endpoint = Endpoint(server.base_url, model, route=Route.OPENAI_CHAT)
    if load.workers == 1:
        return await run_load_async(endpoint, SPECS, load, options)
    # Worker processes block this thread; the server keeps running in this event loop.
    return await asyncio.to_thread(run_load, endpoint, SPECS, load, options)


def max_overlap(result: RunResult) -> int:
    events = sorted([(r.start_ns, 1) for r in result.records]
                    + [(r.end_ns, -1) for r in result.records], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def exp_ks_statistic(samples: list[float], rate: float) -> float:
    """Kolmogorov-Smirnov distance between the samples and Exp(rate)."""
    xs = sorted(samples)
    n = len(xs)
    return max(max((i + 1) / n - (1 - math.exp(-rate * x)), (1 - math.exp(-rate * x)) - i / n)
               for i, x in enumerate(xs))


# -- schedules (exact, no clocks) -------------------------------------------------------------

def test_constant_rate_schedule_is_exact() -> None:
    offsets = ConstantRate(40).offsets_ns()
    assert [next(offsets) for _ in range(5)] == [0, 25 * MS, 50 * MS, 75 * MS, 100 * MS]


def test_poisson_schedule_is_seeded_and_exponential() -> None:
    def first(profile: PoissonRate, n: int) -> list[int]:
        it = profile.offsets_ns()
        return [next(it) for _ in range(n)]

    a = first(PoissonRate(100, seed=7), 2001)
    assert a == first(PoissonRate(100, seed=7), 2001)
    assert a != first(PoissonRate(100, seed=8), 2001)
    assert a[0] == 0
    gaps = [(y - x) / 1e9 for x, y in itertools.pairwise(a)]
    assert statistics.fmean(gaps) == pytest.approx(0.010, rel=0.05)
    # KS test against Exp(100/s): critical value 1.63/sqrt(n) at alpha = 0.01.
    assert exp_ks_statistic(gaps, 100) < 1.63 / math.sqrt(len(gaps))


def test_load_spec_validation() -> None:
    with pytest.raises(LoadError, match="max_requests and/or duration_s"):
        LoadSpec(Concurrency(2))
    with pytest.raises(LoadError, match="users must be > 0"):
        LoadSpec(Concurrency(0), max_requests=3)
    with pytest.raises(LoadError, match="rate must be > 0"):
        LoadSpec(ConstantRate(0), max_requests=3)
    with pytest.raises(LoadError, match="warmup_requests must be < max_requests"):
        LoadSpec(Sequential(), max_requests=3, warmup_requests=3)
    with pytest.raises(LoadError, match="must be >= workers"):
        LoadSpec(ConstantRate(10, max_concurrency=2), max_requests=3, workers=3)


# -- runs against the scripted server ----------------------------------------------------------

async def test_sequential_sends_one_request_at_a_time_in_index_order() -> None:
    async with ScriptedServer(scripts()) as server:
        result = await run(server, LoadSpec(Sequential(), max_requests=10))
    assert [r.index for r in result.records] == list(range(10))
    assert all(r.outcome is Outcome.OK for r in result.records)
    assert all(a.end_ns <= b.start_ns for a, b in itertools.pairwise(result.records))
    # Request i uses workload item i mod len.
    assert [s.body["messages"][0]["content"] for s in server.requests[:4]] == [
        "prompt 0", "prompt 1", "prompt 2", "prompt 0"]


async def test_concurrency_keeps_exactly_n_in_flight() -> None:
    async with ScriptedServer(scripts(0.01, 0.01)) as server:
        result = await run(server, LoadSpec(Concurrency(4), max_requests=40), "timed")
    assert sorted(r.index for r in result.records) == list(range(40))
    assert server.max_active == 4 and max_overlap(result) == 4
    assert server.connections == 4


# After the process was held up, every request that fell due meanwhile goes out at once,
# and the last of them waits for the others' dispatch work: twice the usual slack.
SEND_SLACK_MS = 2 * SLACK_MS


def assert_sent_on_time(starts_ns: list[int], intended_ns: list[int], probe: LoopLag) -> None:
    """Never early; late by at most SEND_SLACK_MS plus however late the event loop itself
    ran around then (a busy machine delays every timer in the process, not just ours)."""
    for start, intended in zip(starts_ns, intended_ns, strict=True):
        delay = (start - intended) / MS
        allowed = probe.lag_ms(intended - MS, start) + SEND_SLACK_MS
        assert -1 <= delay <= allowed, (delay, allowed)


@pytest.mark.timing
async def test_ramp_up_starts_users_linearly(loop_lag: LoopLag) -> None:
    async with ScriptedServer(scripts()) as server:
        result = await run(server, LoadSpec(Concurrency(4, ramp_up_s=0.3), max_requests=4),
                           "slow")
    starts = sorted(r.start_ns for r in result.records)
    assert_sent_on_time(starts, [result.t0_ns + k * 75 * MS for k in range(4)], loop_lag)


@pytest.mark.timing
async def test_constant_rate_start_times_follow_the_schedule(loop_lag: LoopLag) -> None:
    async with ScriptedServer(scripts()) as server:
        result = await run(server, LoadSpec(ConstantRate(50), max_requests=25))
    t0 = result.t0_ns
    assert [r.scheduled_ns - t0 for r in result.records] == [i * 20 * MS for i in range(25)]
    assert_sent_on_time([r.start_ns for r in result.records],
                        [r.scheduled_ns for r in result.records], loop_lag)


@pytest.mark.timing
async def test_poisson_start_times_follow_the_seeded_schedule(loop_lag: LoopLag) -> None:
    profile = PoissonRate(100, seed=3)
    async with ScriptedServer(scripts()) as server:
        result = await run(server, LoadSpec(profile, max_requests=150))
    offsets = profile.offsets_ns()
    # The schedule is exactly the seeded one (whose exponential fit is tested above)...
    assert [r.scheduled_ns - result.t0_ns for r in result.records] == [
        next(offsets) for _ in range(150)]
    # ...and every request went out on it.
    assert_sent_on_time([r.start_ns for r in result.records],
                        [r.scheduled_ns for r in result.records], loop_lag)


async def test_rate_cap_limits_concurrency_and_latency_from_schedule_shows_it() -> None:
    async with ScriptedServer(scripts(0.02, 0.02)) as server:
        result = await run(server, LoadSpec(ConstantRate(500, max_concurrency=2),
                                            max_requests=12), "timed")
    assert server.max_active == 2
    s = summarize(result.records)
    assert s.send_delay_ms.max > 100  # requests queued for a slot
    assert s.e2e_from_scheduled_ms.mean > s.e2e_ms.mean + 50


async def test_duration_limit_and_drain_timeout() -> None:
    async with ScriptedServer(scripts()) as server:
        started = time.perf_counter()
        result = await run(server, LoadSpec(Concurrency(2), duration_s=1.5,
                                            drain_timeout_s=0.2), "stuck")
        elapsed = time.perf_counter() - started
    # Each user started one 20 s request well before the deadline (1.5 s leaves room
    # for a stalled machine); both were cancelled at deadline + drain timeout and
    # recorded as incomplete, long before the server would have answered.
    assert len(result.records) == 2
    assert all(r.outcome is Outcome.INCOMPLETE for r in result.records)
    assert all(r.error.startswith("cancelled") for r in result.records)
    assert elapsed < 10


async def test_no_request_starts_after_the_deadline() -> None:
    async with ScriptedServer(scripts(0.01, 0.01)) as server:
        result = await run(server, LoadSpec(Concurrency(2), duration_s=0.3), "timed")
    deadline = result.t0_ns + 300 * MS
    assert len(result.records) >= 4
    assert all(r.start_ns < deadline for r in result.records)
    assert all(r.outcome is Outcome.OK for r in result.records)


async def test_warmup_requests_are_excluded_from_the_window() -> None:
    async with ScriptedServer(scripts()) as server:
        result = await run(server, LoadSpec(Sequential(), max_requests=10, warmup_requests=3))
    assert [r.warmup for r in result.records] == [True] * 3 + [False] * 7
    s = summarize(result.records)
    assert s.requests == 7
    assert s.window_start_ns == result.records[3].start_ns
    assert s.window_end_ns == result.records[-1].end_ns


async def test_sweeps() -> None:
    loads = concurrency_sweep([1, 3], max_requests=6)
    assert [load.name for load in loads] == ["concurrency-1", "concurrency-3"]
    rates = rate_sweep([10, 20], poisson=True, seed=4, max_requests=2)
    assert [load.profile for load in rates] == [PoissonRate(10, 4), PoissonRate(20, 4)]
    async with ScriptedServer(scripts(0.01, 0.01)) as server:
        peaks = []
        for load in loads:
            server.max_active = 0
            result = await run(server, load, "timed")
            assert len(result.records) == 6
            peaks.append(server.max_active)
    assert peaks == [1, 3]


def _child_clock(queue: multiprocessing.Queue) -> None:
    queue.put(time.perf_counter_ns())


def test_perf_counter_is_one_clock_across_processes() -> None:
    assert time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    before = time.perf_counter_ns()
    proc = ctx.Process(target=_child_clock, args=(queue,))
    proc.start()
    child = queue.get(timeout=60)
    after = time.perf_counter_ns()
    proc.join()
    assert before < child < after


@pytest.mark.slow
async def test_workers_split_the_load_and_merge_records_exactly() -> None:
    options = ClientOptions(send_request_id=True)
    async with ScriptedServer(scripts(0.005, 0.005)) as server:
        result = await run(server, LoadSpec(Concurrency(4), max_requests=60, warmup_requests=4,
                                            workers=2), "timed", options)
    records = result.records
    assert [r.index for r in records] == list(range(60))
    assert [r.warmup for r in records] == [True] * 4 + [False] * 56
    assert {r.worker for r in records} == {0, 1}
    assert all(r.outcome is Outcome.OK for r in records)
    assert server.max_active <= 4 and server.connections == 4
    # Timestamps from both processes and the server share one clock: every request reached
    # the server between its client's send time and its first chunk.
    by_id = {s.headers["x-request-id"]: s for s in server.requests}
    for r in records:
        served = by_id[f"kitt-{r.index}"]
        assert r.start_ns <= served.received_ns <= r.chunk_ns[0]
        assert r.start_ns >= result.t0_ns


@pytest.mark.slow
async def test_workers_deal_one_global_rate_schedule() -> None:
    profile = ConstantRate(100)
    async with ScriptedServer(scripts()) as server:
        result = await run(server, LoadSpec(profile, max_requests=30, workers=2))
    assert [r.scheduled_ns - result.t0_ns for r in result.records] == [
        i * 10 * MS for i in range(30)]
    assert [r.worker for r in result.records] == [i % 2 for i in range(30)]


@pytest.mark.slow
def test_a_failing_worker_is_reported_with_its_traceback() -> None:
    # A body that cannot be serialized: the workers fail while preparing requests.
    endpoint = Endpoint("http://127.0.0.1:9", "m", extra_body={"bad": {1, 2}})
    with pytest.raises(LoadError, match=r"worker 0 failed:(.|\n)*TypeError"):
        run_load(endpoint, SPECS, LoadSpec(Sequential(), max_requests=2, workers=2))


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_run_load_event_loop_choice(event_loop: str) -> None:
    if event_loop == "uvloop":
        pytest.importorskip("uvloop")
    async with ScriptedServer(scripts()) as server:
        endpoint = Endpoint(server.base_url, "timed", route=Route.OPENAI_CHAT)
        result = await asyncio.to_thread(run_load, endpoint, SPECS,
                                         LoadSpec(Concurrency(2), max_requests=6),
                                         ClientOptions(event_loop=event_loop))
    assert result.event_loop == event_loop
    assert [r.index for r in result.records] == list(range(6))
    assert all(r.outcome is Outcome.OK and r.text == "abc" for r in result.records)


def test_event_loop_option_is_validated() -> None:
    with pytest.raises(ValueError, match="event_loop"):
        ClientOptions(event_loop="trio")


def test_a_stop_signal_raised_inside_a_task_is_not_logged_a_second_time(caplog):
    """A signal handler's KeyboardInterrupt (KITT's Interrupted) can land in any task,
    e.g. aiohttp's body writer: it must leave the loop once, with no "Task exception was
    never retrieved" traceback printed after KITT has said it was interrupted."""
    import gc

    from kitt_bench_perf.load import run_in_new_loop

    async def main() -> None:
        async def body_writer() -> None:
            raise KeyboardInterrupt

        task = asyncio.ensure_future(body_writer())
        await asyncio.sleep(5)
        task.result()

    with caplog.at_level("ERROR", logger="asyncio"), pytest.raises(KeyboardInterrupt):
        run_in_new_loop(main(), "asyncio")
    gc.collect()
    assert "never retrieved" not in caplog.text

    # Anything else the loop reports is still reported.
    async def failing() -> None:
        async def broken() -> None:
            raise ValueError("boom")

        task = asyncio.ensure_future(broken())
        await asyncio.sleep(0.01)
        del task  # dropped unretrieved: the loop reports it

    with caplog.at_level("ERROR", logger="asyncio"):
        run_in_new_loop(failing(), "asyncio")
        gc.collect()
    assert "never retrieved" in caplog.text and "boom" in caplog.text
