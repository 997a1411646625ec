"""Measures how late the event loop itself runs, so timing tests can tell the code's own
delay from the machine's: on a busy machine the process may wait milliseconds (a
scheduler time slice) or, rarely, hundreds of milliseconds for a CPU, and nothing in the
process can run earlier than that.

A probe task asks to wake every millisecond and records when each wake-up was due and
when it happened. Between the two the loop demonstrably did not run the probe: it was
busy or the process was not scheduled. `lag_ms(a, b)` is the longest such interval's
overlap with [a, b] (perf_counter_ns): a stall of the process during [a, b] shows up in
full, whether it began before a or not.

The probe cannot tell the operating system's delays from a callback that hogs the loop,
so a test that allows for `lag_ms` checks the code's own timing logic (what it sleeps
for, what it waits on), not the CPU cost of its callbacks; that is what the load
generator benchmark (bench/loadgen.py) measures.
"""

from __future__ import annotations

import asyncio
import bisect
import time

PERIOD_NS = 1_000_000


class LoopLag:
    def __init__(self) -> None:
        self.due: list[int] = []
        self.woke: list[int] = []
        self._task: asyncio.Task | None = None

    async def _probe(self) -> None:
        due = time.perf_counter_ns()
        while True:
            due += PERIOD_NS
            await asyncio.sleep(max(0, due - time.perf_counter_ns()) / 1e9)
            woke = time.perf_counter_ns()
            self.due.append(due)
            self.woke.append(woke)
            due = max(due, woke - PERIOD_NS)  # after a stall, resume the 1 ms rhythm

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._probe())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def lag_ms(self, a_ns: int, b_ns: int) -> float:
        """Longest overlap (ms) of a late wake-up's [due, woke] with [a_ns, b_ns]."""
        # Both lists ascend: candidates are wake-ups due before b that woke after a.
        lo = bisect.bisect_right(self.woke, a_ns)
        hi = bisect.bisect_left(self.due, b_ns)
        overlap = max((min(w, b_ns) - max(d, a_ns)
                       for d, w in zip(self.due[lo:hi], self.woke[lo:hi], strict=True)),
                      default=0)
        return max(0, overlap) / 1e6


# The code's own allowance, on top of the loop's measured lateness: one or two loop
# iterations plus the ~1 ms granularity of the event loop's timers.
SLACK_MS = 5.0
# Allowance for measured-vs-scripted timings (brief stalls below the probe's resolution,
# the scripted server's own timer lateness), on top of the measured lateness.
JITTER_MS = 40.0


def assert_within(value_ms: float, scripted_ms: float, probe: LoopLag, a_ns: int,
                  b_ns: int) -> None:
    """A measured duration is at least what was scripted (timers never fire early) and at
    most JITTER_MS more, plus however long the loop was held up between a and b."""
    upper = scripted_ms + JITTER_MS + probe.lag_ms(a_ns, b_ns)
    assert scripted_ms - 1 <= value_ms <= upper, (value_ms, scripted_ms, upper)


def assert_stamped_at_arrival(chunk_ns: tuple[int, ...] | list[int], write_ns: list[int],
                              probe: LoopLag) -> None:
    """Each chunk's timestamp follows the server's write of it by at most SLACK_MS plus
    the loop's lateness in between (one clock: both are perf_counter_ns)."""
    for c, w in zip(chunk_ns, write_ns, strict=True):
        delay = (c - w) / 1e6
        assert 0 <= delay <= probe.lag_ms(w, c) + SLACK_MS, (delay, probe.lag_ms(w, c))
