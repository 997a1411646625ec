"""Every run that lands on the server (an agent's result, `kitt results submit`) also goes
to InfluxDB when `kitt web --influx URL` is given. Writes run off the event loop and the
store threads; one that fails is logged with the run's id and the command that sends it
again: the run itself is stored either way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

import kitt
from kitt_web import keys

log = logging.getLogger("kitt.web")


class Forwarder:
    def __init__(self, target: kitt.Influx) -> None:
        self.target = target
        self._pending: set[asyncio.Future] = set()

    def send(self, run: kitt.Run) -> None:
        future = asyncio.get_running_loop().run_in_executor(None, self._write, run)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _write(self, run: kitt.Run) -> None:
        try:
            points = self.target.write(kitt.influx_lines(run))
        except kitt.KittError as exc:
            log.warning("kitt web: run %s was not written to InfluxDB: %s (send it again: "
                        "kitt results influx %s --url ...)", run.id, exc, run.id)
            return
        log.info("kitt web: run %s: %d points to InfluxDB", run.id, points)

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def forward(app: web.Application, run: kitt.Run) -> None:
    """Send a newly stored run on, if the server forwards runs."""
    forwarder = app.get(keys.INFLUX)
    if forwarder is not None:
        forwarder.send(run)


async def influx_ctx(app: web.Application) -> AsyncIterator[None]:
    url = app[keys.CONFIG].influx_url
    if url:
        app[keys.INFLUX] = Forwarder(kitt.Influx.parse(url))
    yield
    if url:
        await app[keys.INFLUX].drain()  # writes in flight finish before the server exits
