"""SIGINT and SIGTERM: the first one stops what KITT is doing, wherever it is; a second one
skips the engine's grace period.

The first signal raises `Interrupted` in the main thread, as Ctrl-C raises
KeyboardInterrupt, and it is one: a benchmark's `except Exception` cannot swallow it,
`finally` blocks (the engine's teardown) run as it unwinds, and asyncio lets it out of an
event loop from wherever it lands. asyncio catches any other BaseException raised in its
callbacks (a protocol's `data_received`, a scheduled handle) and only logs it, so a signal
that arrived while the loop was reading a socket would be lost and the load run on.
Where unwinding would lose or orphan something, the signal waits for a safe point
instead: between starting a server and recording its handle (`critical`), while storing a
run (`critical`), and while tearing an engine down (`tearing_down`); `raise_pending`
raises it there. A signal that arrives while one is already being handled forces
teardown: no grace period.

Exit codes: 128 + the first signal's number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The user (or a supervisor: `docker stop`, `timeout`, a CI cancel) asked KITT to
    stop. `notes` say what was stopped and kept; `exit_code` is 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def __str__(self) -> str:
        return "; ".join([f"interrupted by {self.signal_name}", *self.notes])


class _State:
    def __init__(self) -> None:
        self.depth = 0  # nested handle_signals() blocks
        self.critical = 0
        self.tearing_down = 0
        self.pending: int | None = None
        """The first signal of this command; None until one arrives."""
        self.raised = False
        """Whether `Interrupted` for `pending` has been raised already."""
        self.forced = threading.Event()
        self.previous: dict[int, object] = {}


_state = _State()


def forced() -> bool:
    """Whether teardown should skip the grace period (a second signal arrived)."""
    return _state.forced.is_set()


def _handler(signum: int, frame: object) -> None:
    if _state.pending is not None:
        if not _state.forced.is_set():
            _state.forced.set()
            print("kitt: second signal: stopping the engine now (no grace period)",
                  file=sys.stderr, flush=True)
        return
    _state.pending = signum
    if _state.critical or _state.tearing_down:
        return  # raised at the next safe point
    _state.raised = True
    raise Interrupted(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install the handlers (main thread only; elsewhere the caller's handling stays).
    Nested blocks share the outermost one's state."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state.depth == 0:
        _state.previous = {s: signal.getsignal(s) for s in _HANDLED}
        _state.pending, _state.raised = None, False
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
    """Defer signals until the block ends, then raise the first one."""
    _state.critical += 1
    try:
        yield
    finally:
        _state.critical -= 1
    raise_pending()


@contextmanager
def tearing_down() -> Iterator[None]:
    """Signals inside only mark KITT as stopping (a second one forces the teardown); they
    never interrupt it."""
    _state.tearing_down += 1
    try:
        yield
    finally:
        _state.tearing_down -= 1


def raise_pending() -> None:
    """Raise `Interrupted` for a signal that arrived during a deferred block, once (call
    at a safe point)."""
    if (_state.pending is not None and not _state.raised and not _state.critical
            and not _state.tearing_down):
        _state.raised = True
        raise Interrupted(_state.pending)
