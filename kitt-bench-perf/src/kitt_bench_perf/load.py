"""Load profiles and the runner that applies them.

Profiles: `Sequential`, `Concurrency` (closed loop, optional linear ramp-up), `ConstantRate`
and `PoissonRate` (open loop, scheduled send times, optional concurrency cap). A `LoadSpec`
adds limits (request count and/or duration), warmup requests and worker processes; a sweep
is a list of LoadSpecs run one after another.

Workers: `workers=N` runs N spawned processes, each with its own event loop and connection
pool, and merges their raw records. Every process reads the same clock
(`time.perf_counter_ns()` is CLOCK_MONOTONIC on Linux, system-wide), so the parent hands
all workers one absolute start time and their timestamps compare directly. The split keeps
the single-process semantics: rate schedules are generated globally and dealt round-robin
(request i goes to worker i mod N), concurrency users are dealt the same way (with their
ramp-up start times), and request indexes come from one shared counter, so `max_requests`
and warmup counts are global.

Before the run starts, each process opens its share of the connection pool
(`ClientOptions.prewarm_connections`), and while it runs it measures its own lag
(`health.HealthMeter`): `RunResult.client` holds what each process measured.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import random
import signal
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import attrs

from kitt_bench_perf.client import Endpoint, PreparedRequest, StreamClient, prepare
from kitt_bench_perf.health import HealthMeter, WorkerHealth
from kitt_bench_perf.records import RequestRecord
from kitt_bench_perf.workload import RequestSpec

_now = time.perf_counter_ns
_T = TypeVar("_T")
NS = 1_000_000_000


class LoadError(ValueError):
    pass


def _positive(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise LoadError(f"{type(instance).__name__}.{attribute.name} must be > 0, got {value}")


def _optional_positive(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is not None:
        _positive(instance, attribute, value)


@attrs.frozen
class Sequential:
    """One request at a time."""

    @property
    def name(self) -> str:
        return "sequential"


@attrs.frozen
class Concurrency:
    """`users` closed-loop users, each sending its next request when the last one ends.
    With `ramp_up_s`, user k (0-based) starts at k * ramp_up_s / users."""

    users: int = attrs.field(validator=_positive)
    ramp_up_s: float = 0.0

    @property
    def name(self) -> str:
        return f"concurrency-{self.users}"


@attrs.frozen
class ConstantRate:
    """Request i is scheduled at i / rate seconds."""

    rate: float = attrs.field(validator=_positive)
    max_concurrency: int | None = attrs.field(default=None, validator=_optional_positive)
    """Cap on requests in flight; a request waiting for a slot is late, and its latency
    from the scheduled time shows it."""

    @property
    def name(self) -> str:
        return f"rate-{self.rate:g}"

    def offsets_ns(self) -> Iterator[int]:
        i = 0
        while True:
            yield round(i * NS / self.rate)
            i += 1


@attrs.frozen
class PoissonRate:
    """Request 0 at 0, then exponential interarrival times of mean 1/rate drawn from
    `random.Random(seed)`: the same seed gives the same schedule, whatever the workers."""

    rate: float = attrs.field(validator=_positive)
    seed: int = 0
    max_concurrency: int | None = attrs.field(default=None, validator=_optional_positive)

    @property
    def name(self) -> str:
        return f"poisson-{self.rate:g}"

    def offsets_ns(self) -> Iterator[int]:
        rng = random.Random(self.seed)
        t = 0.0
        while True:
            yield round(t * NS)
            t += rng.expovariate(self.rate)


Profile = Sequential | Concurrency | ConstantRate | PoissonRate


@attrs.frozen
class LoadSpec:
    profile: Profile
    max_requests: int | None = attrs.field(default=None, validator=_optional_positive)
    """Total requests, warmup included."""
    duration_s: float | None = attrs.field(default=None, validator=_optional_positive)
    """No request starts (closed loop) or is scheduled (open loop) at or after
    run start + duration_s. Requests in flight then finish (see drain_timeout_s)."""
    warmup_requests: int = 0
    """The first N requests (by index) are marked warmup and excluded from metrics."""
    workers: int = attrs.field(default=1, validator=_positive)
    drain_timeout_s: float | None = None
    """With duration_s: cancel requests still running this long after the deadline
    (they are recorded as incomplete). None waits for them."""

    def __attrs_post_init__(self) -> None:
        if self.max_requests is None and self.duration_s is None:
            raise LoadError("a load needs max_requests and/or duration_s")
        if self.warmup_requests < 0:
            raise LoadError("warmup_requests must be >= 0")
        if self.max_requests is not None and self.warmup_requests >= self.max_requests:
            raise LoadError("warmup_requests must be < max_requests")
        cap = getattr(self.profile, "max_concurrency", None)
        if cap is not None and cap < self.workers:
            raise LoadError(f"max_concurrency ({cap}) must be >= workers ({self.workers}): "
                            "each worker needs at least one slot")

    @property
    def name(self) -> str:
        return self.profile.name


EVENT_LOOPS = ("asyncio", "uvloop", "auto")


@attrs.frozen
class ClientOptions:
    event_loop: str = attrs.field(default="asyncio",
                                  validator=attrs.validators.in_(EVENT_LOOPS))
    """The event loop of `run_load`'s own loops: "asyncio", "uvloop" (the optional
    `uvloop` package) or "auto" (uvloop when installed). On the 2-core machine the
    benchmarks ran on, uvloop made no measurable difference to capacity or timing error
    (bench/loadgen.py, paired runs), so the standard loop is the default."""
    capture_text: bool = True
    timeout_s: float | None = None
    """Total time allowed per request (None: no limit)."""
    send_request_id: bool = False
    """Send `X-Request-Id: kitt-<index>` so server logs can be matched to records."""
    prewarm_connections: bool = True
    """Open the connection pool before the run starts (`StreamClient.prewarm`): one
    connection per closed-loop user or `max_concurrency` slot, or one second of an
    uncapped rate (at most `PREWARM_MAX`). Off measures cold connects as they happen
    (`connect_ms`); TTFT and E2E leave connecting out either way."""


PREWARM_MAX = 1024


@attrs.frozen
class RunResult:
    load: LoadSpec
    records: tuple[RequestRecord, ...] = attrs.field(repr=False)
    """Every request, warmup included, ordered by index."""
    t0_ns: int
    """The run's common start time (perf_counter_ns)."""
    event_loop: str = "asyncio"
    """The event loop implementation the run used."""
    client: tuple[WorkerHealth, ...] = attrs.field(default=(), repr=False)
    """What each client process measured of itself during the run (`health.assess`)."""
    prewarmed: int = 0
    """Connections open in the pools when the run started."""


@attrs.frozen
class WorkerRun:
    """One process's share of a run: its records, its health, its pre-opened pool."""

    records: list[RequestRecord]
    health: WorkerHealth
    prewarmed: int
    t0_ns: int
    """When the run started (after the pool was pre-opened)."""


def _closed_users(profile: Profile) -> tuple[int, float]:
    if isinstance(profile, Sequential):
        return 1, 0.0
    assert isinstance(profile, Concurrency)
    return profile.users, profile.ramp_up_s


def _split(total: int, workers: int, worker: int) -> int:
    return total // workers + (1 if worker < total % workers else 0)


async def _sleep_until(t_ns: int) -> None:
    delay = t_ns - _now()
    # Always yield, so a loop that has fallen behind schedule still lets streams progress.
    await asyncio.sleep(delay / NS if delay > 0 else 0)


class _Counter:
    """Request indexes in claim order; shared across processes when `shared` is given."""

    def __init__(self, limit: int | None, shared: Any = None) -> None:
        self.limit = limit
        self.shared = shared
        self.next = 0

    def claim(self) -> int | None:
        if self.shared is None:
            i = self.next
            self.next += 1
        else:
            with self.shared.get_lock():
                i = self.shared.value
                self.shared.value = i + 1
        return None if self.limit is not None and i >= self.limit else i


async def _drain(tasks: Sequence[asyncio.Task], deadline_ns: int | None,
                 drain_timeout_s: float | None) -> None:
    if not tasks:
        return
    if deadline_ns is None or drain_timeout_s is None:
        await asyncio.gather(*tasks)
        return
    remaining = (deadline_ns + drain_timeout_s * NS - _now()) / NS
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, remaining))
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _closed_loop(client: StreamClient, prepared: Sequence[PreparedRequest],
                       load: LoadSpec, t0: int, counter: _Counter, worker: int,
                       workers: int, meter: HealthMeter) -> list[RequestRecord]:
    users, ramp_s = _closed_users(load.profile)
    deadline = None if load.duration_s is None else t0 + round(load.duration_s * NS)
    records: list[RequestRecord] = []
    n_prepared = len(prepared)
    warmup = load.warmup_requests

    async def user(k: int) -> None:
        if ramp_s:
            await _sleep_until(t0 + round(k * ramp_s * NS / users))
        # A user's next request is due when its previous one ended; the first one's start
        # (the run's or the ramp's) is a schedule, not a client's delay.
        due: int | None = None
        while deadline is None or _now() < deadline:
            i = counter.claim()
            if i is None:
                return
            record = await client.send(prepared[i % n_prepared], i, warmup=i < warmup)
            if due is not None:
                meter.sent(due, record.sent_ns)
            due = record.end_ns
            records.append(record)

    tasks = [asyncio.create_task(user(k)) for k in range(worker, users, workers)]
    await _drain(tasks, deadline, load.drain_timeout_s)
    return records


async def _open_loop(client: StreamClient, prepared: Sequence[PreparedRequest],
                     load: LoadSpec, t0: int, worker: int, workers: int,
                     meter: HealthMeter) -> list[RequestRecord]:
    profile = load.profile
    assert isinstance(profile, ConstantRate | PoissonRate)
    deadline = None if load.duration_s is None else t0 + round(load.duration_s * NS)
    cap = profile.max_concurrency
    slots = None if cap is None else asyncio.Semaphore(_split(cap, workers, worker))
    records: list[RequestRecord] = []
    in_flight: set[asyncio.Task] = set()
    n_prepared = len(prepared)
    warmup = load.warmup_requests
    overdue = 0

    async def one(i: int, scheduled: int, due: int) -> None:
        try:
            record = await client.send(prepared[i % n_prepared], i, scheduled_ns=scheduled,
                                       warmup=i < warmup)
            meter.sent(due, record.sent_ns)
            records.append(record)
        finally:
            if slots is not None:
                slots.release()

    for i, offset in enumerate(profile.offsets_ns()):
        if load.max_requests is not None and i >= load.max_requests:
            break
        scheduled = t0 + offset
        if deadline is not None and scheduled >= deadline:
            break
        if i % workers != worker:
            continue
        delay = scheduled - _now()
        if delay > 0:
            await asyncio.sleep(delay / NS)
            overdue = 0
        else:
            # Behind schedule (the process was held up): send every overdue request at
            # once rather than one per loop iteration, yielding now and then so a rate
            # the client cannot reach does not starve the streams in flight.
            overdue += 1
            if overdue % 64 == 0:
                await asyncio.sleep(0)
        due = scheduled
        if slots is not None:
            await slots.acquire()
            due = max(due, _now())  # waiting for a slot is the load's, not the client's
        task = asyncio.create_task(one(i, scheduled, due))
        in_flight.add(task)  # a strong reference until done, then dropped (long runs)
        task.add_done_callback(in_flight.discard)
    await _drain(list(in_flight), deadline, load.drain_timeout_s)
    return records


def _max_connections(load: LoadSpec, workers: int, worker: int) -> int:
    profile = load.profile
    if isinstance(profile, Sequential | Concurrency):
        return max(1, _split(_closed_users(profile)[0], workers, worker))
    if profile.max_concurrency is not None:
        return max(1, _split(profile.max_concurrency, workers, worker))
    return 0  # open loop without a cap: aiohttp's "no limit"


def _prewarm_count(load: LoadSpec, workers: int, worker: int) -> int:
    limit = _max_connections(load, workers, worker)
    if limit:
        return min(limit, PREWARM_MAX)
    rate = getattr(load.profile, "rate", 1.0)  # uncapped open loop: one second's worth
    return min(max(1, _split(math.ceil(rate), workers, worker)), PREWARM_MAX)


async def run_worker(endpoint: Endpoint, prepared: Sequence[PreparedRequest], load: LoadSpec,
                     options: ClientOptions, *, worker: int = 0, workers: int = 1,
                     shared_counter: Any = None,
                     on_ready: Callable[[], int] | None = None) -> WorkerRun:
    """This process's share of a load (all of it when workers == 1). The run starts at
    the time `on_ready()` returns once the client is open and its pool pre-opened, or
    then."""
    if not prepared:
        raise LoadError("the workload is empty")
    client = StreamClient(endpoint, _max_connections(load, workers, worker),
                          capture_text=options.capture_text, timeout_s=options.timeout_s,
                          send_request_id=options.send_request_id, worker=worker)
    # A full garbage collection walks every object the process holds (~8 ms for the ~40k
    # objects of a process that has imported aiohttp and numpy, on the 2-core machine
    # this was measured on), stopping the event loop, so arrivals wait to be stamped.
    # Objects that exist before the run are moved out of the collector's way until it ends.
    gc.collect()
    gc.freeze()
    meter = HealthMeter(worker, scheduled=not isinstance(load.profile,
                                                          Sequential | Concurrency))
    try:
        async with client:
            prewarmed = 0
            if options.prewarm_connections:
                prewarmed = await client.prewarm(_prewarm_count(load, workers, worker))
            t0 = _now() if on_ready is None else on_ready()
            await _sleep_until(t0)
            meter.start(asyncio.get_running_loop())
            try:
                if isinstance(load.profile, Sequential | Concurrency):
                    counter = _Counter(load.max_requests, shared_counter)
                    records = await _closed_loop(client, prepared, load, t0, counter,
                                                 worker, workers, meter)
                else:
                    records = await _open_loop(client, prepared, load, t0, worker, workers,
                                               meter)
            finally:
                health = meter.stop()
    finally:
        gc.unfreeze()
    return WorkerRun(records + client.cancelled, health, prewarmed, t0)


async def run_load_async(endpoint: Endpoint, specs: Sequence[RequestSpec], load: LoadSpec,
                         options: ClientOptions | None = None) -> RunResult:
    """Run a load in the current event loop (single process; workers must be 1)."""
    if load.workers != 1:
        raise LoadError("run_load_async runs in one process: use run_load for workers > 1")
    prepared = [prepare(endpoint, s) for s in specs]
    run = await run_worker(endpoint, prepared, load, options or ClientOptions())
    loop = asyncio.get_running_loop()
    name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    return RunResult(load, tuple(sorted(run.records, key=_index)), run.t0_ns, name,
                     (run.health,), run.prewarmed)


def _index(record: RequestRecord) -> int:
    return record.index


def resolve_event_loop(choice: str) -> str:
    """What a ClientOptions.event_loop choice means here: "asyncio" or "uvloop"."""
    if choice == "auto":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio"
        return "uvloop"
    return choice


def run_in_new_loop(coro: Coroutine[Any, Any, _T], event_loop: str) -> _T:
    """asyncio.run, or its uvloop equivalent."""
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            coro.close()
            raise LoadError("event_loop='uvloop' needs the uvloop package") from exc
        return uvloop.run(_quiet_on_interrupt(coro))
    return asyncio.run(_quiet_on_interrupt(coro))


async def _quiet_on_interrupt(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run `coro` in a loop that does not log a stop signal a second time. A signal
    handler's KeyboardInterrupt (KITT's Interrupted is one) raised inside some task, say
    aiohttp's body writer, leaves that task holding it while it propagates out of the
    loop; asyncio would later print it as "Task exception was never retrieved", with a
    traceback, after KITT has already said it was interrupted."""
    loop = asyncio.get_running_loop()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not isinstance(context.get("exception"), KeyboardInterrupt):
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return await coro


def _worker_main(conn: Any, endpoint: Endpoint, specs: Sequence[RequestSpec], load: LoadSpec,
                 options: ClientOptions, worker: int, workers: int, counter: Any) -> None:
    """Entry point of a spawned worker: prepare, report ready, wait for t0, run, reply.
    A terminal's Ctrl-C reaches the whole process group; the parent decides what a signal
    means (it stops the workers), so a worker ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        prepared = [prepare(endpoint, s) for s in specs]

        def ready() -> int:
            conn.send(("ready", worker))
            return conn.recv()

        run = run_in_new_loop(
            run_worker(endpoint, prepared, load, options, worker=worker, workers=workers,
                       shared_counter=counter, on_ready=ready),
            resolve_event_loop(options.event_loop))
        conn.send(("records", run))
    except BaseException:  # report everything: the parent cannot see a child's traceback
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


START_MARGIN_S = 0.1  # between "all workers ready" and t0: time for t0 to reach them


def run_load(endpoint: Endpoint, specs: Sequence[RequestSpec], load: LoadSpec,
             options: ClientOptions | None = None, *,
             startup_timeout_s: float = 120.0) -> RunResult:
    """Run a load to completion and return every request's record (blocking)."""
    options = options or ClientOptions()
    if not specs:
        raise LoadError("the workload is empty")
    event_loop = resolve_event_loop(options.event_loop)
    if load.workers == 1:
        return run_in_new_loop(run_load_async(endpoint, specs, load, options), event_loop)
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)
    pipes, procs = [], []
    for w in range(load.workers):
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, name=f"kitt-perf-worker-{w}", daemon=True,
                           args=(child_end, endpoint, list(specs), load, options, w,
                                 load.workers, counter))
        proc.start()
        child_end.close()
        pipes.append(parent_end)
        procs.append(proc)
    finished = False
    try:
        for w, pipe in enumerate(pipes):
            if not pipe.poll(startup_timeout_s):
                raise LoadError(f"worker {w} not ready after {startup_timeout_s} s")
            _receive(pipe, procs[w], "ready", w)
        t0 = _now() + round(START_MARGIN_S * NS)
        for pipe in pipes:
            pipe.send(t0)
        runs: list[WorkerRun] = [_receive(pipe, procs[w], "records", w)
                                 for w, pipe in enumerate(pipes)]
        finished = True
    finally:
        _stop_workers(procs, wait_s=10 if finished else 0)
    records = [r for run in runs for r in run.records]
    return RunResult(load, tuple(sorted(records, key=_index)), t0, event_loop,
                     tuple(run.health for run in runs), sum(run.prewarmed for run in runs))


def _stop_workers(procs: Sequence[Any], wait_s: float) -> None:
    """Reap the workers. After a failure or a signal (`wait_s` 0) they are stopped at once,
    their in-flight requests with them: the load is over."""
    for proc in procs:
        proc.join(timeout=wait_s)
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _receive(pipe: Any, proc: Any, kind: str, worker: int) -> Any:
    try:
        message = pipe.recv()
    except EOFError:
        proc.join(timeout=5)
        raise LoadError(f"worker {worker} exited (code {proc.exitcode}) before sending "
                        f"{kind!r}") from None
    if message[0] == "error":
        raise LoadError(f"worker {worker} failed:\n{message[1]}")
    if message[0] != kind:
        raise LoadError(f"worker {worker}: expected {kind!r}, got {message[0]!r}")
    return message[1]


def run_sweep(endpoint: Endpoint, specs: Sequence[RequestSpec], loads: Sequence[LoadSpec],
              options: ClientOptions | None = None) -> list[RunResult]:
    """Run each load in turn (e.g. from `concurrency_sweep` or `rate_sweep`)."""
    return [run_load(endpoint, specs, load, options) for load in loads]


def concurrency_sweep(levels: Sequence[int], *, ramp_up_s: float = 0.0,
                      **limits: Any) -> list[LoadSpec]:
    """One LoadSpec per concurrency level; `limits` are LoadSpec fields applied to each."""
    return [LoadSpec(Concurrency(n, ramp_up_s), **limits) for n in levels]


def rate_sweep(rates: Sequence[float], *, poisson: bool = False, seed: int = 0,
               max_concurrency: int | None = None, **limits: Any) -> list[LoadSpec]:
    """One LoadSpec per rate (constant, or Poisson with `seed`); `limits` as above."""
    return [LoadSpec(PoissonRate(r, seed, max_concurrency) if poisson
                     else ConstantRate(r, max_concurrency), **limits) for r in rates]
