"""Storage test helpers: run builders, the backends (fixtures in storage/conftest.py), and
the shapes of older schemas for the migration tests.

PostgreSQL tests use the server named by KITT_TEST_POSTGRES_URL (CI's .ci/run sets it),
each in its own PostgreSQL schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from hypothesis import strategies as st

from kitt.records import (
    BenchmarkResult,
    EngineConfig,
    Fingerprint,
    ItemRecord,
    Metric,
    RequestSample,
    Run,
)
from support import require
from support.strategies import runs as _model_runs

POSTGRES_URL = os.environ.get("KITT_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

# Any Run the model allows, with an id a store accepts (non-empty, no NUL).
run_ids = st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s)
any_runs = st.tuples(_model_runs, run_ids).map(lambda pair: attrs.evolve(pair[0], id=pair[1]))


def postgres_reachable() -> tuple[bool, str]:
    if not POSTGRES_URL:
        return False, "KITT_TEST_POSTGRES_URL is not set"
    try:
        import psycopg
    except ImportError:
        return False, "psycopg is not installed"
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        return False, f"cannot connect to KITT_TEST_POSTGRES_URL: {exc}"
    return True, ""


@contextmanager
def fresh_store_url(backend: str, folder: Path) -> Iterator[str]:
    """A URL where no store exists yet: a SQLite file in `folder`, or a PostgreSQL schema
    of its own on KITT_TEST_POSTGRES_URL (dropped afterwards; skipped when unreachable,
    failed when KITT_TEST_REQUIRE names postgres)."""
    if backend == "sqlite":
        yield f"sqlite://{folder / 'karr.db'}"
        return
    ok, reason = postgres_reachable()
    require("postgres", ok, reason)
    schema = f"kitt_t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}schema={schema}"
    finally:
        drop_schema(schema)


def drop_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def raw_store(url: str):
    """The store at `url` opened by its backend, skipping open_store's schema checks."""
    from kitt import plugins
    from kitt._storage.url import scheme_of

    return plugins.storage_backends()[scheme_of(url)].open(url)


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def make_run(i: int, *, model: str = "tiny.gguf", engine: str = "llamacpp",
             suite: str = "quick", status: str = "passed", fingerprint: str = "fp-a",
             repeats: int = 2, metrics: int = 3, run_id: str | None = None,
             value: float | None = None, params: dict | None = None) -> Run:
    """A realistic run: `repeats` repetitions of a throughput benchmark with `metrics`
    metrics (and `params`), one quality benchmark with items and request samples."""
    base = 100.0 + i if value is None else value
    repetitions = [
        BenchmarkResult(
            "throughput", "1", rep + 1, True,
            metrics=tuple(Metric(f"m{k}", base + k + rep * 0.5, "tokens/s")
                          for k in range(metrics)),
            started_at=T0, finished_at=T0 + timedelta(seconds=3),
            requests=(RequestSample(0.0, True, ttft_ms=12.5, e2e_ms=80.0, input_tokens=10,
                                    output_tokens=32),
                      RequestSample(5.0, False, error="timeout")),
            params=params or {},
        )
        for rep in range(repeats)
    ]
    quality = BenchmarkResult("mmlu", "2", 1, status == "passed",
                              metrics=(Metric("accuracy", 0.5, "%"),),
                              items=(ItemRecord("q1", True, target="A", prompt="p",
                                                output="A", subject="math",
                                                scores={"em": 1.0}),))
    results = (*repetitions, quality)
    return Run(
        id=run_id or f"run-{i:05d}", model=model,
        engine=EngineConfig(engine, mode="docker", image="ghcr.io/x/llama:1"),
        suite=suite, status=status, started_at=T0 + timedelta(minutes=i),
        finished_at=T0 + timedelta(minutes=i, seconds=30), kitt_version="0.1.0",
        hardware=Fingerprint(fingerprint), engine_version="b4000", config={"i": i},
        results=results,
    )


LATER_COLUMNS = {("results", "params"): 3, ("metrics", "direction"): 4}
"""Columns added after v1, each the last of its table, with the version that added it."""


def save_as_of(store, runs, version: int) -> None:
    """Save `runs` as KITT did at schema `version`: without the columns later versions
    added, and without metric totals before v3 (for stores migrated to `version`)."""
    from kitt._storage import rows as rowmod

    batch = store._rows_of(runs)
    with store._transaction() as cur:
        if version >= 3:
            store._totals.after_write(cur, {}, batch["runs"], batch["metrics"])
        for table in ("runs", *rowmod.CHILD_TABLES):
            columns = list(store._columns(table))
            table_rows = batch[table]
            for (name, column), added in LATER_COLUMNS.items():
                if name == table and version < added:
                    assert columns[-1] == column
                    table_rows = [row[:-1] for row in table_rows]
                    columns.pop()
            if table_rows:
                cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                                f"VALUES ({', '.join('?' * len(columns))})", table_rows)


def assert_same_aggregates(got, want, rel: float = 1e-9) -> None:
    """Two `aggregate` answers agree: the same groups in the same order with the same
    counts, min and max, and mean and stddev within `rel` of the size of the values (a
    spread near 0 is judged on that scale, where rounding differs by path)."""
    assert [(r.group, r.benchmark, r.metric, r.unit, r.runs, r.n, r.min, r.max) for r in got] \
        == [(r.group, r.benchmark, r.metric, r.unit, r.runs, r.n, r.min, r.max) for r in want]
    for a, b in zip(got, want, strict=True):
        size = max(abs(b.min), abs(b.max))
        assert a.mean == pytest.approx(b.mean, rel=rel, abs=rel * size), (a, b)
        if b.stddev is None:
            assert a.stddev is None, (a, b)
        else:
            assert a.stddev == pytest.approx(b.stddev, rel=rel, abs=rel * size), (a, b)
        assert (a.cv is None) == (b.cv is None) or b.stddev < rel * size, (a, b)
