"""Fixtures of the storage tests: an open store on each backend (`store_url` is
tests/conftest.py's)."""

from __future__ import annotations

import pytest

from kitt import open_store


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        yield opened
