"""Fixtures of the storage tests: a store URL per backend (SQLite; PostgreSQL when
reachable), and an open store."""

from __future__ import annotations

import uuid

import pytest
from support import require
from support.stores import BACKENDS, POSTGRES_URL, drop_schema, postgres_reachable

from kitt import open_store


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """A URL where no store exists yet."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'karr.db'}"
        return
    ok, reason = postgres_reachable()
    require("postgres", ok, reason)
    schema = f"kitt_t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}schema={schema}"
    finally:
        drop_schema(schema)


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        yield opened
