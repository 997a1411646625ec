"""A stop signal reaches the code KITT is running wherever it lands, event loops included.

In-process: `signal.raise_signal` runs the handler before it returns, so the signal lands
exactly where each test puts it.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import pytest

from kitt._util.signals import Interrupted, critical, handle_signals


def _run(coro) -> None:
    with handle_signals():
        asyncio.run(coro)


async def _wait_forever(what: str) -> None:
    """Stands for a load waiting on its streams; the signal must end it."""
    await asyncio.wait_for(asyncio.get_running_loop().create_future(), 20)
    pytest.fail(f"the loop ran on after SIGTERM in {what}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_a_protocol_callback_leaves_the_event_loop(sig):
    # asyncio logs and drops any other BaseException raised in data_received (a fatal
    # error on that connection only); the load would run on with the signal lost.
    closed = []

    class Reader(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            signal.raise_signal(sig)

        def connection_lost(self, exc: object) -> None:
            closed.append(exc)

    async def main() -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            await asyncio.get_running_loop().create_connection(Reader, sock=ours)
            theirs.sendall(b"data: {}\n\n")
            await _wait_forever("data_received")

    with pytest.raises(Interrupted) as stopped:
        _run(main())
    assert stopped.value.exit_code == 128 + sig
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_a_signal_in_a_scheduled_callback_leaves_the_event_loop():
    async def main() -> None:
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGTERM)
        await _wait_forever("a call_soon callback")

    with pytest.raises(Interrupted):
        _run(main())


def test_the_tasks_of_an_interrupted_loop_still_run_their_cleanup():
    cleaned = []

    async def stream() -> None:
        try:
            await asyncio.sleep(20)
        finally:
            cleaned.append("stream")

    async def main() -> None:
        task = asyncio.create_task(stream())
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGTERM)
        await task

    with pytest.raises(Interrupted):
        _run(main())
    assert cleaned == ["stream"]


def test_except_exception_does_not_swallow_a_signal():
    with pytest.raises(Interrupted), handle_signals():
        try:
            signal.raise_signal(signal.SIGTERM)
        except Exception:
            pytest.fail("Interrupted was caught as an Exception")


def test_a_signal_in_a_critical_block_is_raised_when_it_ends():
    done = []
    with pytest.raises(Interrupted), handle_signals(), critical():
        signal.raise_signal(signal.SIGINT)
        done.append("stored")
    assert done == ["stored"]
