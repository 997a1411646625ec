"""KITT's own client, watched while it drives a load, and the verdict on its numbers.

A client process that falls behind stamps chunks late and sends requests late, and its
report then blames the engine. Each client process measures, during the load:

- loop lag: every `LAG_INTERVAL_S` a thread hands the event loop a callback stamped with
  the moment it was handed over; how late the loop runs it is how long an event that
  happened then (a chunk arriving) waited before the loop got to it. A thread, not a
  timer inside the loop, because asyncio's timers wake up to 1 ms late by design (epoll's
  timeout is in whole milliseconds), which would read as lag on an idle client;
- send delay: from the moment a request was due (its scheduled time in an open loop, the
  previous request's end in a closed loop) to its bytes going to the socket;
- CPU: the process's CPU seconds per wall second (1.0 is a saturated core).

`assess` turns them into `details.client_health` and the client-limited verdict. A loop
lag over the bound at p99 limits any load: chunks that arrive while the loop is late are
stamped late (by the loop, or, with kernel stamps, with the receive time of the last
segment of the read that takes them all). A send delay over the bound limits a
rate-based load, whose latencies from the scheduled time then include the client's
lateness; in a closed loop it only means the engine saw a little less load than asked,
which the details say. Either way the result says so, with the fix (docs/metrics.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np

from kitt_bench_perf.records import RequestRecord

_now = time.perf_counter_ns
NS_PER_MS = 1_000_000
LAG_INTERVAL_S = 0.005
MIN_WALL_NS = 100 * NS_PER_MS
SATURATED_CPU = 0.9
"""CPU seconds per wall second from which a client process counts as saturated (it
explains a lag; it is not a verdict of its own: a busy client that keeps up is fine)."""


class LagProbe:
    """Samples the running event loop's lag from a thread (see the module docstring)."""

    def __init__(self, interval_s: float = LAG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: Any) -> None:
        self._thread = threading.Thread(target=self._run, args=(loop,), daemon=True,
                                        name="kitt-lag-probe")
        self._thread.start()

    def _run(self, loop: Any) -> None:
        append = self._samples.append

        def landed(handed_ns: int) -> None:
            append(_now() - handed_ns)

        while not self._stop.wait(self.interval_s):
            try:
                loop.call_soon_threadsafe(landed, _now())
            except RuntimeError:  # the loop closed under us: the load is over
                return

    def stop(self) -> tuple[int, ...]:
        """Stop sampling; the lags in ns (a callback still pending is not counted)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return tuple(self._samples)


@attrs.frozen
class WorkerHealth:
    """What one client process measured of itself during a load (plain values: it
    crosses process boundaries)."""

    worker: int
    wall_ns: int
    cpu_ns: int
    loop_lag_ns: tuple[int, ...] = attrs.field(repr=False)
    send_delay_ns: tuple[int, ...] = attrs.field(repr=False)
    scheduled: bool = False
    """The send delays are against a rate schedule (an open loop)."""

    @property
    def cpu_cores(self) -> float:
        """CPU seconds per wall second; 0 for a process whose share of the load was over
        too soon to say (a worker with no user of its own)."""
        return self.cpu_ns / self.wall_ns if self.wall_ns >= MIN_WALL_NS else 0.0


class HealthMeter:
    """Measures the process it runs in between `start` (in the running loop) and
    `stop`; `sent(due_ns, sent_ns)` records one request's send delay."""

    def __init__(self, worker: int = 0, *, scheduled: bool = False) -> None:
        self.worker = worker
        self.scheduled = scheduled
        self._probe = LagProbe()
        self._send_delays: list[int] = []
        self._wall0 = self._cpu0 = 0

    def start(self, loop: Any) -> None:
        self._wall0, self._cpu0 = _now(), time.process_time_ns()
        self._probe.start(loop)

    def sent(self, due_ns: int, sent_ns: int) -> None:
        self._send_delays.append(max(0, sent_ns - due_ns))

    def stop(self) -> WorkerHealth:
        lags = self._probe.stop()
        return WorkerHealth(self.worker, _now() - self._wall0,
                            time.process_time_ns() - self._cpu0, lags,
                            tuple(self._send_delays), self.scheduled)


def _stats_ms(values_ns: Sequence[int]) -> dict[str, float] | None:
    if not values_ns:
        return None
    a = np.asarray(values_ns, dtype=np.float64) / NS_PER_MS
    p50, p99 = np.percentile(a, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(a.max()),
            "count": int(a.size)}


FIX = ("spread the load over more client processes (`workers: N`), send fewer streams "
       "per process, or run KITT on a machine of its own")


@attrs.frozen
class Verdict:
    client_limited: bool
    reasons: tuple[str, ...]
    details: dict[str, Any]
    """`details.client_health`."""

    @property
    def warning(self) -> str | None:
        """The one-line caveat for the result, or None when the client kept up."""
        if not self.client_limited:
            return None
        return f"client-limited: {'; '.join(self.reasons)}. Fix: {FIX}"


def arrival_of(records: Iterable[RequestRecord]) -> str | None:
    """How a load's chunks were stamped (`RequestRecord.arrival`): the weakest way any
    response was, `kernel` only when every one was."""
    seen = {r.arrival for r in records if r.arrival is not None}
    return next((way for way in ("read", "protocol", "kernel") if way in seen), None)


def assess(workers: Sequence[WorkerHealth], bound_ms: float,
           arrival: str | None = None) -> Verdict:
    """The verdict on a load's numbers from what its client processes measured;
    `arrival` is how its chunks were stamped (`arrival_of`)."""
    lag = _stats_ms([x for w in workers for x in w.loop_lag_ns])
    send = _stats_ms([x for w in workers for x in w.send_delay_ns])
    scheduled = any(w.scheduled for w in workers)
    cpu = max((w.cpu_cores for w in workers), default=0.0)
    reasons = []
    if lag is not None and lag["p99"] > bound_ms:
        why = (f"; a client process used {cpu:.0%} of a CPU core: the client itself was "
               "the bottleneck" if cpu >= SATURATED_CPU else
               "; the client was waiting for a CPU (is the machine busy, the engine on "
               "the same cores?)")
        late = ("chunks arriving meanwhile may be stamped up to that late (those that "
                "wait for one read share the kernel's stamp of its last segment)"
                if arrival == "kernel" else "so chunk and end stamps may be that late")
        reasons.append(
            f"the client's event loop got to events {lag['p99']:.1f} ms late (p99, bound "
            f"{bound_ms:g} ms): {late}{why}")
    if scheduled and send is not None and send["p99"] > bound_ms:
        reasons.append(f"requests went out {send['p99']:.1f} ms after their scheduled "
                       f"time (p99, bound {bound_ms:g} ms), so the engine saw less load "
                       "than asked and latencies from the schedule include the client's "
                       "lateness")
    details = {
        "client_limited": bool(reasons), "bound_ms": bound_ms,
        "loop_lag_ms": lag, "send_delay_ms": send, "send_delay_against": (
            "schedule" if scheduled else "previous request's end"),
        "cpu_cores_max": cpu, "arrival_stamps": arrival,
        "workers": [{"worker": w.worker, "cpu_cores": w.cpu_cores,
                     "loop_lag_ms": _stats_ms(w.loop_lag_ns),
                     "send_delay_ms": _stats_ms(w.send_delay_ns)} for w in workers],
        "lag_interval_ms": LAG_INTERVAL_S * 1000,
        "reasons": reasons,
        "fix": FIX if reasons else None,
    }
    return Verdict(bool(reasons), tuple(reasons), details)
