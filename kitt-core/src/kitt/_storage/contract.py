"""The Store interface every storage backend implements, and the values it exchanges.

A Store holds whole `kitt.Run`s. The raw JSON document (`kitt._util.converter.to_json(run)`) is
the truth and `get_run` returns exactly what `save_run` was given; the normalized tables
beside it exist only to answer queries fast.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar

import attrs

from kitt.errors import BadInput
from kitt.records import Metric, Run

GROUP_KEYS = ("model", "engine", "engine_version", "suite", "fingerprint", "status", "mode")
"""Run fields that `aggregate` can group by (benchmark and metric are always grouped)."""


SORT_KEYS = ("started_at", "model", "engine", "suite", "status", "fingerprint", "id")
"""Run fields `list_runs` can order by (ties broken by id, in the same direction)."""


@attrs.frozen
class MetricBound:
    """A run matches when one of its results of `benchmark` has `metric` within
    [`min`, `max`] (either bound may be None)."""

    benchmark: str
    metric: str
    min: float | None = None
    max: float | None = None


@attrs.frozen
class RunFilter:
    """Which runs a query covers. Every field set must match (AND); None means any.

    `since`/`until` bound `started_at` (inclusive/exclusive); naive datetimes mean UTC.
    `ids` restricts to these exact run ids; `metrics` to runs within every bound.
    """

    model: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    suite: str | None = None
    fingerprint: str | None = None
    status: str | None = None
    mode: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    ids: tuple[str, ...] | None = None
    metrics: tuple[MetricBound, ...] = ()


EVERY_RUN = RunFilter()


@attrs.frozen
class RunSummary:
    """One row of `list_runs`: the run's identity and outcome, without its results."""

    id: str
    model: str
    engine: str
    engine_version: str | None
    mode: str
    image: str | None
    suite: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    kitt_version: str
    fingerprint: str
    benchmarks: int
    passed: int


@attrs.frozen
class AggregateRow:
    """Statistics of one metric over every repetition in a group of runs.

    `stddev` is the sample standard deviation (None for a single value); `cv` is
    stddev / |mean| (None when undefined).
    """

    group: dict[str, Any]
    benchmark: str
    metric: str
    unit: str
    runs: int
    n: int
    mean: float
    stddev: float | None
    cv: float | None
    min: float
    max: float


@attrs.frozen
class ResultMetrics:
    """One benchmark result as a comparison needs it (`kitt._compare.compare` keys results by name
    and parameters): no request samples, items or details."""

    name: str
    params: dict[str, Any]
    metrics: tuple[Metric, ...]


@attrs.frozen
class RunMetrics:
    """A run as a comparison needs it: its summary and its results in order."""

    run: RunSummary
    results: tuple[ResultMetrics, ...]


@attrs.frozen
class ImportReport:
    """What `import_` did: runs added, runs replaced by a different document, and runs
    whose identical document was already stored (so re-imports change nothing)."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0


class Cursor(abc.ABC):
    """The slice of DB-API every SQL store offers, with `?` placeholders."""

    rowcount: int
    """Rows changed by the last `execute` (UPDATE, DELETE, INSERT)."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def fetchall(self) -> list[tuple]: ...

    @abc.abstractmethod
    def fetchone(self) -> tuple | None: ...


Migration = str | Callable[[Cursor], None]
"""One step of a plugin's schema: SQL text, or a function given the migration's cursor."""


class Database(abc.ABC):
    """A plugin's own tables, in the database that holds the store (`Store.database`).

    SQL uses `?` placeholders on every dialect. Name tables after the namespace
    (`web_tokens` for namespace `web`): KARR's own tables and other plugins' share the
    database. Keep values portable: TEXT (JSON as text), INTEGER, REAL (timestamps as
    epoch seconds), so that SQLite and PostgreSQL read back the same Python values.
    """

    dialect: str
    """`sqlite` or `postgresql`: for the rare statement that must differ."""

    namespace: str

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Cursor]:
        """A write transaction: commits when the block ends, rolls back on any exception.
        Writers wait for each other, so a read-then-write inside one is consistent."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one read statement and return its rows."""


class Store(abc.ABC):
    """A KARR results store. Open one with `kitt._storage.open_store(url)`.

    Writes are atomic per call: a crash leaves either the old or the new state. A Store
    is used from one thread at a time; open one per process or thread.
    """

    url: str
    """The URL it was opened with (password masked)."""

    schema_versions: ClassVar[int]
    """The newest schema version this code writes."""

    # -- runs ------------------------------------------------------------------------------
    @abc.abstractmethod
    def save_run(self, run: Run) -> None:
        """Store `run`, atomically replacing any run with the same id."""

    def save_runs(self, runs: Iterable[Run]) -> None:
        """Store several runs in one transaction (all or none)."""
        for run in runs:
            self.save_run(run)

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with this id, or with this unique id prefix; BadInput otherwise."""

    @abc.abstractmethod
    def list_runs(self, where: RunFilter = EVERY_RUN, limit: int | None = None,
                  offset: int = 0, *, sort: str = "started_at", descending: bool = True,
                  after: tuple[Any, str] | None = None) -> list[RunSummary]:
        """Matching runs ordered by `sort` (one of SORT_KEYS), newest or last first unless
        not `descending`. `after` is the (sort value, id) of the last run of the page
        before: the next page starts after it (keyset paging, stable while runs are
        added)."""

    def count_runs(self, where: RunFilter = EVERY_RUN) -> int:
        """How many runs match."""
        return len(self.list_runs(where))

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Delete one run (exact id) and everything recorded with it; BadInput if absent."""

    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Delete several runs (ids or unique prefixes); the full ids deleted."""
        deleted = []
        for run_id in run_ids:
            deleted.append(self.get_run(run_id).id)
            self.delete_run(deleted[-1])
        return deleted

    @abc.abstractmethod
    def documents(self, where: RunFilter = EVERY_RUN) -> Iterable[tuple[str, str]]:
        """(run id, raw JSON document) of matching runs, oldest first, streamed."""

    # -- queries ---------------------------------------------------------------------------
    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts and ranges describing the whole store."""

    @abc.abstractmethod
    def aggregate(self, where: RunFilter = EVERY_RUN,
                  group_by: Sequence[str] = ("model", "engine")) -> list[AggregateRow]:
        """Mean, stddev and coefficient of variation of every metric per group."""

    def comparison_values(self, run_ids: Sequence[str]) -> list[RunMetrics]:
        """What `kitt._compare.compare` needs of each run (ids or unique prefixes; one entry per id
        given, in order). This default reads whole runs; a backend should answer from its
        indexes without reading documents, as the SQL stores do."""
        out = []
        for run_id in run_ids:
            run = self.get_run(run_id)
            summary = self.list_runs(RunFilter(ids=(run.id,)))[0]
            out.append(RunMetrics(summary, tuple(
                ResultMetrics(r.name, r.params, tuple(r.metrics)) for r in run.results)))
        return out

    @abc.abstractmethod
    def metric_rows(self, where: RunFilter = EVERY_RUN) -> Iterable[dict[str, Any]]:
        """One flat row per metric value of matching runs (the CSV export)."""

    # -- plugins' own tables -----------------------------------------------------------------
    def database(self, namespace: str, migrations: Sequence[Migration]) -> Database:
        """The tables of plugin `namespace` (lowercase letters, digits and _), brought up
        to `len(migrations)` first: step N is applied once, in one transaction with the
        ones before it that were missing, and the version is kept per namespace. A
        database whose version for `namespace` is newer than `migrations` is refused
        (BadInput). Stores that hold no SQL raise BadInput."""
        raise BadInput(f"the store at {self.url} keeps no plugin tables",
                       hint="use a SQLite or PostgreSQL store (--store, KITT_STORE)")

    # -- schema ----------------------------------------------------------------------------
    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema version of the open database (0 when it holds no KARR schema)."""

    @abc.abstractmethod
    def migrate(self, target: int | None = None) -> list[int]:
        """Apply forward migrations up to `target` (default: newest); the versions applied."""

    @abc.abstractmethod
    def check(self) -> list[str]:
        """Integrity problems found (empty when healthy)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StorageBackend:
    """Base class for storage backend plugins.

    `open(url, create=True)` returns a `kitt.Store`. With `create=False` a store that does
    not exist yet is an error (`kitt.BadInput`) rather than created. `kitt.open_store`
    checks the schema version of what `open` returns and applies `Store.migrate()` to new
    stores.
    """

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    def open(self, url: str, *, create: bool = True) -> Store:
        """Open (creating if needed and `create`) the store at `url`."""
        raise NotImplementedError
