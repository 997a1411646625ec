"""Store calls off the event loop. A `kitt.Store` is used by one thread at a time, so each
of a few threads opens its own (and the web's tables in it); handlers `await
threads.run(fn, *args)` and `fn(karr, *args)` runs there."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import attrs

import kitt
from kitt_web.state import open_state

T = TypeVar("T")


@attrs.frozen
class Karr:
    """What a store thread hands a function: the results store and the web's tables."""

    store: kitt.Store
    db: kitt.Database


class StoreUnavailable(Exception):
    """The store cannot be reached or opened (a 503)."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message, self.hint = message, hint


def _is_outage(exc: BaseException) -> bool:
    """A driver's connection failure (the store is down), as opposed to a bad request."""
    names = {cls.__module__.split(".")[0] + "." + cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"psycopg.OperationalError", "psycopg_pool.PoolTimeout",
                         "sqlite3.OperationalError", "psycopg.InterfaceError"})


class StoreThreads:
    def __init__(self, url: str, workers: int = 4) -> None:
        self.url = url
        self._local = threading.local()
        self._opened: list[kitt.Store] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kitt-store")

    def _karr(self) -> Karr:
        karr = getattr(self._local, "karr", None)
        if karr is None:
            try:
                store = kitt.open_store(self.url)
            except kitt.BadInput as exc:
                raise StoreUnavailable(exc.message, exc.hint or "check --store") from exc
            try:
                karr = Karr(store, open_state(store))
            except BaseException:
                store.close()
                raise
            self._local.karr = karr
            with self._lock:
                self._opened.append(store)
        return karr

    def _call(self, fn: Callable[..., T], args: tuple) -> T:
        try:
            return fn(self._karr(), *args)
        except Exception as exc:
            if _is_outage(exc):
                self._forget()
                raise StoreUnavailable(f"the results store is unavailable: "
                                       f"{str(exc).strip().splitlines()[0] if str(exc) else exc}",
                                       "check that the store (--store, KITT_STORE) is "
                                       "running and reachable, then retry") from exc
            raise

    def _forget(self) -> None:
        """Drop this thread's store after an outage: the next call opens a fresh one."""
        karr = getattr(self._local, "karr", None)
        self._local.karr = None
        if karr is not None:
            with self._lock:
                if karr.store in self._opened:
                    self._opened.remove(karr.store)
            with contextlib.suppress(Exception):  # it is already broken
                karr.store.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn, args)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Synchronously, from outside the loop (start-up)."""
        return self._pool.submit(self._call, fn, args).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for store in self._opened:
                with contextlib.suppress(Exception):  # closing what is left, best effort
                    store.close()
            self._opened.clear()

