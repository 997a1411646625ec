"""A store that goes away: requests get 503 with a hint (never a 500 or a hang), and the
server recovers by itself when the store is back."""

from __future__ import annotations

import pytest
from support.stores import POSTGRES_URL
from support.web import web_client

pytestmark = pytest.mark.postgres


def kill_connections(schema_url: str) -> int:
    """Terminate every server connection the web's store opened (as PostgreSQL's restart
    or a failover does)."""
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            "application_name = '' AND datname = current_database() AND "
            "pid <> pg_backend_pid() AND usename = current_user").fetchall()
    return len(rows)


@pytest.fixture
def pg_seeded(request, tmp_path):
    from support.stores import fresh_store_url
    from support.web import seed

    with fresh_store_url("postgresql", tmp_path) as url:
        yield seed(url)


async def test_a_store_that_drops_its_connections_is_503_then_recovers(pg_seeded):
    async with web_client(pg_seeded.url, store_threads=1) as client:
        auth = pg_seeded.auth("viewer")
        assert (await client.get("/api/v1/runs", headers=auth)).status == 200
        assert kill_connections(pg_seeded.url) >= 1
        response = await client.get("/api/v1/runs", headers=auth)
        assert response.status == 503
        error = (await response.json())["error"]
        assert error["code"] == "store_unavailable" and "retry" in error["hint"]
        health = await client.get("/api/v1/health")
        assert health.status == 200  # a fresh connection: the store is back
        assert (await client.get("/api/v1/runs", headers=auth)).status == 200


async def test_a_store_that_cannot_be_reached_is_503(pg_seeded):
    unreachable = "postgresql://kitt:kitt@127.0.0.1:1/kitt?connect_timeout=2"
    async with web_client(unreachable) as client:
        response = await client.get("/api/v1/health")
        assert response.status == 503
        body = await response.json()
        assert "cannot connect" in body["error"]["message"]
        page = await client.get("/login")
        assert page.status == 200  # the login page itself needs no store
