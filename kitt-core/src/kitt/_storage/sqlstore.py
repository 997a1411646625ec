"""The Store operations written once in SQL; `sqlite.py` and `postgres.py` supply the
connection, transactions and the few dialect differences.

SQL here uses `?` placeholders; the PostgreSQL store rewrites them to `%s`.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, ClassVar

import cattrs

from kitt._storage import aggregate as aggmod
from kitt._storage import rows as rowmod
from kitt._storage import schema
from kitt._storage.contract import (
    EVERY_RUN,
    GROUP_KEYS,
    SORT_KEYS,
    AggregateRow,
    Cursor,
    Database,
    Migration,
    ResultMetrics,
    RunFilter,
    RunMetrics,
    RunSummary,
    Store,
)
from kitt._storage.totals import Totals
from kitt._util.converter import from_json, to_json
from kitt.errors import BadInput
from kitt.records import Metric, Run

_SUMMARY_COLUMNS = ("id", "model", "engine", "engine_version", "mode", "image", "suite",
                    "status", "started_at", "finished_at", "kitt_version", "fingerprint",
                    "benchmarks", "passed")
# The highest code point: `id >= p AND id < p + MAX_CHAR` selects ids starting with p.
_MAX_CHAR = "\U0010ffff"


class SQLStore(Store):
    dialect: ClassVar[str]
    schema_versions: ClassVar[int] = schema.LATEST

    # -- what a dialect provides ------------------------------------------------------------
    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[Cursor]:
        """A write transaction: commits on success, rolls back on any exception."""

    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one read statement and return its rows."""

    @abc.abstractmethod
    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        """Run one read statement and yield its rows without loading them all."""

    @abc.abstractmethod
    def _lock_schema(self, cur: Cursor) -> None:
        """Serialize schema changes between processes (inside `_transaction`)."""

    @abc.abstractmethod
    def _version_in(self, cur: Cursor) -> int:
        """The schema version, read inside a transaction (0 when there is no schema)."""

    def _ts(self, value: datetime) -> Any:
        return value

    def _from_ts(self, value: Any) -> datetime:
        return rowmod.utc(value)

    def _clean_text(self, value: Any) -> Any:
        return value

    def _clean_json(self, value: str) -> str:
        return value

    _null_eq: ClassVar[str] = "IS"
    """The dialect's null-safe equality operator."""

    def _lock_writers(self, cur: Cursor) -> None:
        """Serialize write transactions, where `_transaction` does not already (SQLite's
        BEGIN IMMEDIATE does): a write reads the stored metric totals and writes back
        totals computed from them."""

    @property
    def _totals(self) -> Totals:
        return Totals(self._null_eq, self._bulk_upsert_totals)

    _bulk_upsert_totals: Callable[[Cursor, list[tuple]], None] | None = None
    """A faster way to upsert many metric_totals rows, if the dialect has one."""

    # -- writing ----------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        self.save_runs([run])

    def save_runs(self, runs: Iterable[Run]) -> None:
        by_id: dict[str, Run] = {}
        for run in runs:  # the last of several runs with one id wins, as in sequential saves
            by_id[run.id] = run
        if not by_id:
            return
        batch = self._rows_of(by_id.values())
        with self._transaction() as cur:
            self._write(cur, batch)

    def _rows_of(self, runs: Iterable[Run]) -> dict[str, list[tuple]]:
        saved_at = datetime.now(timezone.utc)
        batch: dict[str, list[tuple]] = {name: [] for name in rowmod.TABLE_COLUMNS}
        for run in runs:
            _check_id(run.id)
            try:
                document = to_json(run)
            except (TypeError, ValueError) as exc:
                raise BadInput(f"run {run.id!r} cannot be stored as JSON: {exc}",
                               hint="metrics must be finite numbers and free-form fields "
                                    "JSON values") from exc
            for table, table_rows in self._run_rows(run, document, saved_at).items():
                batch[table].extend(table_rows)
        return batch

    def _run_rows(self, run: Run, document: str, saved_at: datetime) -> dict[str, list]:
        return rowmod.run_rows(run, document, saved_at, self._ts, self._clean_text,
                               self._clean_json)

    def _write(self, cur: Cursor, batch: dict[str, list[tuple]]) -> None:
        """Replace the runs in `batch`: upsert the run rows, drop their old children,
        insert the new, then bring the metric totals up to date. Writers are serialized
        first, so what is read of the stored runs stays true until the commit."""
        self._lock_writers(cur)
        totals = self._totals
        before = totals.stored_cells(cur, [row[0] for row in batch["runs"]])
        columns = rowmod.TABLE_COLUMNS["runs"]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        cur.executemany(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({_marks(len(columns))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
            batch["runs"],
        )
        ids = [(row[0],) for row in batch["runs"]]
        # Deleting results cascades to metrics, samples and items.
        for table in ("run_documents", "hardware", "results"):
            cur.executemany(f"DELETE FROM {table} WHERE run_id = ?", ids)
        for table in rowmod.CHILD_TABLES:
            self._insert(cur, table, batch[table])
        totals.after_write(cur, before, batch["runs"], batch["metrics"])

    def _columns(self, table: str) -> tuple[str, ...]:
        return rowmod.TABLE_COLUMNS[table]

    def _insert(self, cur: Cursor, table: str, table_rows: list[tuple]) -> None:
        if table_rows:
            columns = self._columns(table)
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                            f"VALUES ({_marks(len(columns))})", table_rows)

    def delete_run(self, run_id: str) -> None:
        self._delete([self.resolve_id(run_id)])

    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Delete several runs (ids or unique prefixes) in one transaction."""
        full_ids = [self.resolve_id(run_id) for run_id in run_ids]
        self._delete(full_ids)
        return full_ids

    def _delete(self, full_ids: list[str]) -> None:
        with self._transaction() as cur:
            self._lock_writers(cur)
            totals = self._totals
            before = totals.stored_cells(cur, full_ids)
            cur.executemany("DELETE FROM runs WHERE id = ?", [(i,) for i in full_ids])
            totals.after_delete(cur, before)

    # -- reading ----------------------------------------------------------------------------
    def resolve_id(self, run_id: str) -> str:
        """The full id of the run with this id or unique id prefix."""
        if not run_id:
            raise BadInput("empty run id", hint="give a run id or a unique prefix of one")
        if self._query("SELECT id FROM runs WHERE id = ?", (run_id,)):
            return run_id
        found = [row[0] for row in self._query(
            "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
            (run_id, run_id + _MAX_CHAR)) if row[0].startswith(run_id)]
        if not found:
            raise BadInput(f"no run {run_id!r} in {self.url}",
                           hint="`kitt storage list` shows the stored runs")
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise BadInput(f"run id prefix {run_id!r} is ambiguous: {shown}",
                           hint="give more characters of the id")
        return found[0]

    def get_run(self, run_id: str) -> Run:
        full_id = self.resolve_id(run_id)
        found = self._query("SELECT document FROM run_documents WHERE run_id = ?", (full_id,))
        if not found:  # deleted between the two statements
            raise BadInput(f"no run {run_id!r} in {self.url}")
        return _structure(found[0][0], full_id)

    def documents(self, where: RunFilter = EVERY_RUN) -> Iterator[tuple[str, str]]:
        clause, params = self._where(where)
        yield from self._stream(
            "SELECT r.id, d.document FROM runs r JOIN run_documents d ON d.run_id = r.id"
            f"{clause} ORDER BY r.started_at, r.id", params)

    def list_runs(self, where: RunFilter = EVERY_RUN, limit: int | None = None,
                  offset: int = 0, *, sort: str = "started_at", descending: bool = True,
                  after: tuple[Any, str] | None = None) -> list[RunSummary]:
        if sort not in SORT_KEYS:
            raise BadInput(f"cannot sort runs by {sort!r}",
                           hint=f"sort by one of: {', '.join(SORT_KEYS)}")
        clause, params = self._where(where)
        order = "DESC" if descending else "ASC"
        if after is not None:
            value, run_id = after
            if sort == "started_at":
                value = self._ts(rowmod.utc(value) if isinstance(value, datetime)
                                 else datetime.fromisoformat(value))
            # Row-value comparison: one index range scan on (sort column, id).
            clause += (" AND " if clause else " WHERE ") + (
                f"(r.{sort}, r.id) {'<' if descending else '>'} (?, ?)")
            params += [value, run_id]
        sql = (f"SELECT {', '.join('r.' + c for c in _SUMMARY_COLUMNS)} FROM runs r{clause} "
               f"ORDER BY r.{sort} {order}" + ("" if sort == "id" else f", r.id {order}"))
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        if offset:
            sql += " OFFSET ?" if limit is not None else self._offset_sql
            params.append(int(offset))
        return [self._summary(row) for row in self._query(sql, params)]

    _offset_sql: ClassVar[str] = " OFFSET ?"

    def count_runs(self, where: RunFilter = EVERY_RUN) -> int:
        clause, params = self._where(where)
        return int(self._query(f"SELECT count(*) FROM runs r{clause}", params)[0][0])

    def _summary(self, row: tuple) -> RunSummary:
        values = dict(zip(_SUMMARY_COLUMNS, row, strict=True))
        values["started_at"] = self._from_ts(values["started_at"])
        if values["finished_at"] is not None:
            values["finished_at"] = self._from_ts(values["finished_at"])
        return RunSummary(**values)

    def _where(self, where: RunFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for field in GROUP_KEYS:
            value = getattr(where, field)
            if value is not None:
                clauses.append(f"r.{field} = ?")
                params.append(value)
        if where.since is not None:
            clauses.append("r.started_at >= ?")
            params.append(self._ts(where.since))
        if where.until is not None:
            clauses.append("r.started_at < ?")
            params.append(self._ts(where.until))
        if where.ids is not None:
            if not where.ids:
                clauses.append("1 = 0")
            else:
                clauses.append(f"r.id IN ({_marks(len(where.ids))})")
                params.extend(where.ids)
        for bound in where.metrics:
            # IN over the metrics_bound index (v5): one range scan. A correlated EXISTS
            # makes the planner probe that index per run instead, which is far slower.
            test = ["benchmark = ?", "name = ?"]
            params += [bound.benchmark, bound.metric]
            for op, value in ((">=", bound.min), ("<=", bound.max)):
                if value is not None:
                    test.append(f"value {op} ?")
                    params.append(float(value))
            clauses.append(f"r.id IN (SELECT run_id FROM metrics WHERE {' AND '.join(test)})")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def stats(self) -> dict[str, Any]:
        counts = {
            table: self._query(f"SELECT count(*) FROM {table}")[0][0]
            for table in ("runs", "results", "metrics", "request_samples", "item_records")
        }
        first, last = self._query("SELECT min(started_at), max(started_at) FROM runs")[0]
        by_status = dict(self._query("SELECT status, count(*) FROM runs GROUP BY status"))
        distinct = {
            column: self._query(f"SELECT count(DISTINCT {column}) FROM runs")[0][0]
            for column in ("model", "engine", "suite", "fingerprint")
        }
        return {
            "url": self.url,
            "backend": self.dialect,
            "schema_version": self.schema_version(),
            "counts": counts,
            "status": dict(sorted(by_status.items())),
            "distinct": distinct,
            "first_started_at": self._from_ts(first).isoformat() if first else None,
            "last_started_at": self._from_ts(last).isoformat() if last else None,
        }

    def aggregate(self, where: RunFilter = EVERY_RUN,
                  group_by: Sequence[str] = ("model", "engine")) -> list[AggregateRow]:
        keys = aggmod.check_group_by(group_by)
        if aggmod.totals_cover(where):
            return aggmod.from_totals(self._query, where, keys)
        return aggmod.by_scan(self._query, self._where, where, keys)

    def comparison_values(self, run_ids: Sequence[str]) -> list[RunMetrics]:
        """Per run: its summary and, per result in order, the name, parameters and
        metrics. Three indexed queries; request samples, items and documents are never
        read (a document can be megabytes)."""
        full_ids = [self.resolve_id(run_id) for run_id in run_ids]
        unique = list(dict.fromkeys(full_ids))
        summaries = {s.id: s for s in self.list_runs(RunFilter(ids=tuple(unique)))}
        marks = _marks(len(unique))
        results: dict[str, dict[int, tuple[str, str]]] = {run_id: {} for run_id in unique}
        for run_id, position, name, params in self._query(
                f"SELECT run_id, position, name, params FROM results WHERE run_id IN ({marks})",
                unique):
            results[run_id][position] = (name, params)
        metrics: dict[tuple[str, int], list[Metric]] = {}
        for run_id, position, name, value, unit, direction in self._query(
                "SELECT run_id, position, name, value, unit, direction FROM metrics "
                f"WHERE run_id IN ({marks}) ORDER BY run_id, position, seq", unique):
            metrics.setdefault((run_id, position), []).append(
                Metric(name, value, unit, direction))
        missing = [run_id for run_id in unique if run_id not in summaries]
        if missing:  # deleted between the queries
            raise BadInput(f"no run {missing[0]!r} in {self.url}")
        found = {run_id: RunMetrics(summaries[run_id], tuple(
            ResultMetrics(name, json.loads(params), tuple(metrics.get((run_id, position), ())))
            for position, (name, params) in sorted(results[run_id].items())))
            for run_id in unique}
        return [found[run_id] for run_id in full_ids]

    def metric_rows(self, where: RunFilter = EVERY_RUN) -> Iterator[dict[str, Any]]:
        clause, params = self._where(where)
        columns = ("run_id", "model", "engine", "engine_version", "suite", "fingerprint",
                   "started_at", "benchmark", "benchmark_version", "run_number", "passed",
                   "metric", "value", "unit", "direction")
        sql = ("SELECT r.id, r.model, r.engine, r.engine_version, r.suite, r.fingerprint, "
               "r.started_at, res.name, res.version, res.run_number, res.passed, m.name, "
               "m.value, m.unit, m.direction FROM runs r "
               "JOIN results res ON res.run_id = r.id "
               "JOIN metrics m ON m.run_id = res.run_id AND m.position = res.position"
               f"{clause} ORDER BY r.started_at, r.id, res.position, m.seq")
        for row in self._stream(sql, params):
            record = dict(zip(columns, row, strict=True))
            record["started_at"] = self._from_ts(record["started_at"]).isoformat()
            record["passed"] = bool(record["passed"])
            yield record

    # -- plugins' own tables ------------------------------------------------------------------
    def database(self, namespace: str, migrations: Sequence[Migration]) -> Database:
        from kitt._storage.plugin_tables import PluginTables

        tables = PluginTables(self, namespace)
        tables.migrate(migrations)
        return tables

    # -- schema -----------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._transaction() as cur:
            return self._version_in(cur)

    def migrate(self, target: int | None = None) -> list[int]:
        target = schema.LATEST if target is None else target
        if not 0 <= target <= schema.LATEST:
            raise BadInput(f"no schema version {target}",
                           hint=f"versions go from 1 to {schema.LATEST}")
        applied = []
        with self._transaction() as cur:
            self._lock_schema(cur)  # concurrent first opens must not both create tables
            self._lock_writers(cur)  # data steps read and rewrite what writers change
            current = self._version_in(cur)
            if current > schema.LATEST:
                raise newer_schema_error(self.url, current)
            for version in range(current + 1, target + 1):
                for step in schema.statements(self.dialect, version):
                    if isinstance(step, schema.DataStep):
                        getattr(self, f"_migrate_{step.name}")(cur)
                    else:
                        cur.execute(step)
                applied.append(version)
            if applied:
                cur.execute("DELETE FROM schema_version")
                cur.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
        return applied

    def _migrate_result_params(self, cur: Cursor) -> None:
        """v3: fill results.params from the stored documents, a few runs at a time (a
        document can be megabytes). Results without parameters keep the default '{}'."""
        cur.execute("SELECT id FROM runs ORDER BY id")
        run_ids = [row[0] for row in cur.fetchall()]
        for start in range(0, len(run_ids), 100):
            chunk = run_ids[start:start + 100]
            cur.execute("SELECT run_id, document FROM run_documents "
                        f"WHERE run_id IN ({_marks(len(chunk))})", chunk)
            updates = [
                (rowmod.params_json(result.get("params") or {}), run_id, position)
                for run_id, document in cur.fetchall()
                for position, result in enumerate(json.loads(document)["results"])
                if result.get("params")
            ]
            if updates:
                cur.executemany("UPDATE results SET params = ? WHERE run_id = ? AND "
                                "position = ?", updates)

    def _migrate_totals(self, cur: Cursor) -> None:
        """v3: compute the metric totals of the runs already stored."""
        self._totals.rebuild(cur)

    def check(self) -> list[str]:
        """Consistency the schema cannot enforce: every run has its document and hardware
        row and as many results as it says, and the metric totals equal a recompute from
        the metric values. A half-written run would show up here."""
        problems = []
        for table in ("run_documents", "hardware"):
            missing = self._query(f"SELECT count(*) FROM runs r WHERE NOT EXISTS "
                                  f"(SELECT 1 FROM {table} t WHERE t.run_id = r.id)")[0][0]
            if missing:
                problems.append(f"{missing} run(s) without a {table} row")
        wrong = self._query(
            "SELECT count(*) FROM runs r WHERE r.benchmarks <> "
            "(SELECT count(*) FROM results res WHERE res.run_id = r.id)")[0][0]
        if wrong:
            problems.append(f"{wrong} run(s) whose result count does not match")
        if self.schema_version() >= 3:
            problems += self._totals.disagreements(self._query)
        return problems

    @abc.abstractmethod
    def schema_objects(self) -> dict[str, str]:
        """Tables, columns and indexes, normalized: how tests compare two schemas."""


def newer_schema_error(url: str, version: int) -> BadInput:
    return BadInput(
        f"the store at {url} has schema version {version}, newer than this KITT understands "
        f"(up to {schema.LATEST})",
        hint="upgrade kitt-core (pip install -U kitt-core) to open it")


def _structure(document: str, run_id: str) -> Run:
    try:
        return from_json(document, Run)
    except (ValueError, cattrs.BaseValidationError) as exc:  # only if edited by hand
        raise BadInput(f"the stored document of run {run_id!r} is not a valid run: {exc}",
                       hint="re-import the run from its results directory") from exc


def _check_id(run_id: str) -> None:
    if not isinstance(run_id, str) or not run_id or "\x00" in run_id:
        raise BadInput(f"invalid run id {run_id!r}",
                       hint="a run id is a non-empty string without NUL characters")


def _marks(count: int) -> str:
    return ", ".join("?" * count)
