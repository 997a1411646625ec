"""Fixtures of the storage tests: a store URL per backend (SQLite; PostgreSQL when
reachable), and an open store."""

from __future__ import annotations

import pytest
from support.stores import BACKENDS, fresh_store_url

from kitt import open_store


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """A URL where no store exists yet."""
    with fresh_store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        yield opened
