"""Fixtures of the load generator tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.loop_lag import LoopLag


@pytest.fixture
async def loop_lag() -> AsyncIterator[LoopLag]:
    """How late the test's event loop runs (`support.loop_lag.LoopLag`)."""
    probe = LoopLag()
    probe.start()
    yield probe
    await probe.stop()
