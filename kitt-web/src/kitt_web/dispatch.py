"""What moves jobs along inside one server: wake-ups for agents waiting on a claim and
for browsers following a log, the reaper that ends the jobs of silent agents, and the
campaigns' scheduler (state/campaigns.py: its state is all in the database).

Wake-ups are in-process (one `kitt web` serves a queue); a waiter also re-reads the
database when its wait times out, so a missed wake-up costs at most one poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from kitt_web import keys

log = logging.getLogger("kitt.web.dispatch")


class Notifier:
    """`await wait(topic, timeout)` returns when `notify(topic)` is called (True) or the
    timeout passes (False). Topics: "queue", "job:<id>" (state or log changed)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.closed = False

    def close(self) -> None:
        """The server is shutting down: every waiter returns now, and every later wait at
        once (long polls and event streams end instead of holding the shutdown up)."""
        self.closed = True
        for event in self._events.values():
            event.set()
        self._events.clear()

    def notify(self, topic: str) -> None:
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    async def wait(self, topic: str, timeout: float) -> bool:
        if self.closed:
            return True
        event = self._events.setdefault(topic, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


async def fleet_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the notifier, the server's start time (silence is counted from it:
    after a restart every agent gets a fresh grace period) and the reaper task."""
    app[keys.NOTIFIER] = Notifier()
    app[keys.STARTED_AT] = time.time()
    app.on_shutdown.append(_close_waits)
    task = asyncio.create_task(_reaper(app))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _close_waits(app: web.Application) -> None:
    app[keys.NOTIFIER].close()


async def _reaper(app: web.Application) -> None:
    """Each round: end the jobs of silent agents, then let the campaigns dispatch (an
    entry whose job just ended makes room for the next on its agent)."""
    from kitt_web.state import campaigns, jobs

    config = app[keys.CONFIG]
    every = max(0.5, min(config.agent_heartbeat_s, 5.0))
    while True:
        await asyncio.sleep(every)
        try:
            ended, queued = await app[keys.THREADS].run(lambda karr: (jobs.reap(
                karr.db, lost_after_s=config.agent_lost_after_s,
                cancel_grace_s=config.cancel_grace_s, grace_from=app[keys.STARTED_AT]),
                campaigns.dispatch(karr.db)))
        except Exception:  # the store is down: try again next round
            log.warning("the scheduler could not reach the store", exc_info=True)
            continue
        for job_id in ended:
            log.info("job %s ended by the reaper", job_id)
            app[keys.NOTIFIER].notify(f"job:{job_id}")
        if queued:
            app[keys.NOTIFIER].notify("queue")
