"""SIGINT/SIGTERM during a launch: the first one raises `Interrupted` so `finally` blocks
tear the engine down; a signal while tearing down forces it (kill without grace).

Signals are only raised at safe points: between starting a server and recording its
handle they are deferred (`critical()`), otherwise a Ctrl-C there would orphan it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kitt.errors import KittError

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KittError):
    """The user (or a supervisor) asked KITT to stop. Exit code 128 + signal number."""

    def __init__(self, signum: int):
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}; the engine was stopped")
        self.signum = signum
        self.exit_code = 128 + signum


class _State:
    def __init__(self) -> None:
        self.depth = 0  # nested handle_signals() blocks
        self.critical = 0
        self.tearing_down = 0
        self.pending: int | None = None
        self.forced = threading.Event()
        self.previous: dict[int, object] = {}


_state = _State()


def forced() -> bool:
    """Whether teardown should skip the grace period (a second signal arrived)."""
    return _state.forced.is_set()


def _handler(signum: int, frame: object) -> None:
    if _state.tearing_down or _state.pending is not None:
        if not _state.forced.is_set():
            _state.forced.set()
            print("kitt: second signal: stopping the engine now (no grace period)",
                  file=sys.stderr, flush=True)
        return
    if _state.critical:
        _state.pending = signum
        return
    _state.pending = signum
    raise Interrupted(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install the handlers (main thread only; elsewhere the caller's handling stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state.depth == 0:
        _state.previous = {s: signal.getsignal(s) for s in _HANDLED}
        _state.pending = None
        _state.forced.clear()
        for s in _HANDLED:
            signal.signal(s, _handler)
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0:
            for s, previous in _state.previous.items():
                signal.signal(s, previous)  # type: ignore[arg-type]


@contextmanager
def critical() -> Iterator[None]:
    """Defer signals until the block ends (then raise the first one)."""
    _state.critical += 1
    try:
        yield
    finally:
        _state.critical -= 1
    if not _state.critical and not _state.tearing_down and _state.pending is not None:
        raise Interrupted(_state.pending)


@contextmanager
def tearing_down() -> Iterator[None]:
    """Signals inside only force the teardown; they never interrupt it."""
    _state.tearing_down += 1
    try:
        yield
    finally:
        _state.tearing_down -= 1


def raise_pending() -> None:
    """Raise a signal that arrived during a deferred block (call at a safe point)."""
    if _state.pending is not None and not _state.tearing_down:
        raise Interrupted(_state.pending)
