"""Fixtures of the kitt-web tests: a seeded store on each backend (`store_url` is
tests/conftest.py's), and a client of the application in this process."""

from __future__ import annotations

import pytest
from support.web import VIOLATIONS, seed, web_client


@pytest.fixture
def seeded(store_url):
    return seed(store_url)


@pytest.fixture
async def client(seeded):
    async with web_client(seeded.url) as opened:
        yield opened


@pytest.fixture(autouse=True)
def no_contract_violations():
    """Every /api/v1 response a test's client saw matched the OpenAPI document."""
    VIOLATIONS.clear()
    yield
    if VIOLATIONS:
        pytest.fail("responses outside the OpenAPI contract:\n" +
                    "\n".join(str(v) for v in VIOLATIONS[:5]))
