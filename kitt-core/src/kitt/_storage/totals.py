"""The `metric_totals` table: running statistics of every metric per group of runs, kept
in step with the `metrics` table inside each write transaction.

A run's *cell* is its values of the run fields `aggregate` can group by (`GROUP_KEYS`);
a run belongs to exactly one cell. Totals are kept per cell and metric (benchmark, name,
unit), so any filter on and any grouping by those fields is answered by merging totals.

How a write keeps them exact:
- a new run is merged in (Chan et al.'s parallel update; O(its metrics));
- a replaced or deleted run's old values cannot be taken back out reliably (min and max
  are not invertible, and subtracting moments loses precision over many replaces), so
  the cells it was in are recomputed from the `metrics` table: bounded to that cell.
  A replaced run whose stored version had no results (`kitt run` saving a run as
  `running`) added nothing, so it counts as new.
Writers are serialized (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock), so reading
totals, merging in Python and writing them back cannot race another writer.

Every statistic is computed here in Python, not in SQL: PostgreSQL's float arithmetic
raises on overflow, and a metric near 1e308 must never make a save fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kitt._storage.contract import GROUP_KEYS
from kitt._storage.rows import TABLE_COLUMNS

Cell = tuple[Any, ...]
"""A run's GROUP_KEYS values, in GROUP_KEYS order (engine_version may be None)."""
MetricKey = tuple[str, str, str]
"""(benchmark, metric name, unit)."""

# engine_version can be NULL in `runs`; as a key column it is '' plus a flag instead.
KEY_COLUMNS = ("model", "engine", "engine_version", "has_engine_version", "suite",
               "fingerprint", "status", "mode")
STAT_COLUMNS = ("runs", "n", "mean", "m2", "low", "high")
_COLUMNS = (*KEY_COLUMNS, "benchmark", "name", "unit", *STAT_COLUMNS)
_RUN_FIELDS = [TABLE_COLUMNS["runs"].index(key) for key in GROUP_KEYS]
_CHUNK = 500  # ids per IN list: far below every driver's parameter limit
COLUMNS = _COLUMNS
"""Every metric_totals column, in table order (rows written are in this order)."""
UPSERT_CONFLICT = (f"ON CONFLICT ({', '.join(_COLUMNS[:-len(STAT_COLUMNS)])}) DO UPDATE SET "
                   + ", ".join(f"{c} = excluded.{c}" for c in STAT_COLUMNS))
BULK_ROWS = 200
BulkUpsert = Callable[[Any, list[tuple]], None]


class Moments:
    """Count, mean, sum of squared deviations (m2), min and max of some values, and how
    many runs they came from. Merging two is exact up to rounding (no sum of squares)."""

    __slots__ = ("high", "low", "m2", "mean", "n", "runs")

    def __init__(self, runs: int, n: int, mean: float, m2: float, low: float, high: float):
        self.runs, self.n, self.mean, self.m2, self.low, self.high = runs, n, mean, m2, low, high

    @classmethod
    def of(cls, values: Sequence[float], runs: int = 1) -> Moments:
        """Two passes over the values (as `kitt._compare.compare.Stats`): the most exact form."""
        n = len(values)
        if n == 1:  # most metrics of most runs: no need for the general form
            return cls(runs, 1, values[0], 0.0, values[0], values[0])
        mean = math.fsum(v / n for v in values)  # dividing first: no overflow near 1e308
        m2 = _sum_or_inf((v - mean) * (v - mean) for v in values)
        return cls(runs, n, mean, m2, min(values), max(values))

    def merge(self, other: Moments) -> Moments:
        n = self.n + other.n
        delta = other.mean - self.mean
        if math.isfinite(delta):
            mean = self.mean + delta * (other.n / n)
        else:  # means of opposite sign near 1e308: the weighted form cannot overflow
            mean = self.mean * (self.n / n) + other.mean * (other.n / n)
        # delta * delta may be inf (a variance beyond floats), never NaN: no inf - inf.
        m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
        return Moments(self.runs + other.runs, n, mean, m2, min(self.low, other.low),
                       max(self.high, other.high))

    @classmethod
    def combine(cls, parts: Sequence[Sequence[Any]]) -> Moments:
        """Merge many (runs, n, mean, m2, low, high) rows at once: the total mean first,
        then every part's deviation from it (two passes, as `of`; no object per part)."""
        if len(parts) == 1:
            return cls(*parts[0])
        n = sum(part[1] for part in parts)
        mean = math.fsum(part[2] * (part[1] / n) for part in parts)
        m2 = _sum_or_inf(part[3] + part[1] * (part[2] - mean) * (part[2] - mean)
                         for part in parts)
        return cls(sum(part[0] for part in parts), n, mean, m2, min(part[4] for part in parts),
                   max(part[5] for part in parts))

    @property
    def stddev(self) -> float | None:
        """Sample standard deviation; None for one value or one beyond float range."""
        if self.n < 2:
            return None
        if self.low == self.high:
            return 0.0  # not 1e-17 from the mean's rounding: equal values do not vary
        value = math.sqrt(self.m2 / (self.n - 1))
        return value if math.isfinite(value) else None

    def row(self) -> tuple:
        return (self.runs, self.n, self.mean, self.m2, self.low, self.high)

    def __repr__(self) -> str:
        return f"Moments{self.row()}"


def _sum_or_inf(terms: Iterable[float]) -> float:
    """The exact sum of non-negative terms; inf where it exceeds floats (fsum raises)."""
    try:
        return math.fsum(terms)
    except OverflowError:
        return math.inf


def moments_by_key(rows: Iterable[tuple[Any, ...]], width: int) -> dict[tuple, Moments]:
    """Rows of (*key, run id, value), the key `width` columns wide -> Moments per key,
    counting distinct runs. The hot loop of every scan: kept to slicing and appending."""
    values: dict[tuple, list[float]] = {}
    runs: dict[tuple, set[str]] = {}
    for row in rows:
        key = row[:width]
        found = values.get(key)
        if found is None:
            values[key], runs[key] = [row[width + 1]], {row[width]}
        else:
            found.append(row[width + 1])
            runs[key].add(row[width])
    return {key: Moments.of(found, len(runs[key])) for key, found in values.items()}


def cell_of(run_row: Sequence[Any]) -> Cell:
    """The cell of a `runs` table row (TABLE_COLUMNS["runs"] order)."""
    return tuple(run_row[i] for i in _RUN_FIELDS)


def _cell_of_keys(row: Sequence[Any]) -> Cell:
    model, engine, engine_version, has_engine_version, *rest = row
    return (model, engine, engine_version if has_engine_version else None, *rest)


def key_values(cell: Cell) -> tuple:
    """The KEY_COLUMNS values of a cell."""
    model, engine, engine_version, suite, fingerprint, status, mode = cell
    return (model, engine, "" if engine_version is None else engine_version,
            engine_version is not None, suite, fingerprint, status, mode)


class Totals:
    """Maintains `metric_totals` through a cursor of the caller's write transaction.

    `null_eq` is the dialect's null-safe equality (`IS` on SQLite, `IS NOT DISTINCT FROM`
    on PostgreSQL), for matching runs.engine_version, which may be NULL. `bulk_upsert`,
    if given, writes many rows faster than `executemany` (an import touches every cell).
    """

    def __init__(self, null_eq: str, bulk_upsert: BulkUpsert | None = None):
        self.bulk_upsert = bulk_upsert
        self.runs_in_cell = " AND ".join(
            f"r.{key} {null_eq if key == 'engine_version' else '='} ?" for key in GROUP_KEYS)
        self.totals_in_cell = " AND ".join(f"{key} = ?" for key in KEY_COLUMNS)
        self.upsert = (f"INSERT INTO metric_totals ({', '.join(_COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(_COLUMNS))}) {UPSERT_CONFLICT}")

    def stored_cells(self, cur, run_ids: Sequence[str]) -> dict[str, tuple[Cell, bool]]:
        """The cell of each stored run among `run_ids`, and whether it has results (read
        before a write replaces or deletes them)."""
        found: dict[str, tuple[Cell, bool]] = {}
        for start in range(0, len(run_ids), _CHUNK):
            chunk = list(run_ids[start:start + _CHUNK])
            cur.execute(f"SELECT id, {', '.join(GROUP_KEYS)}, benchmarks FROM runs "
                        f"WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            for row in cur.fetchall():
                found[row[0]] = (tuple(row[1:-1]), row[-1] > 0)
        return found

    def after_write(self, cur, before: dict[str, tuple[Cell, bool]],
                    run_rows: Sequence[Sequence[Any]],
                    metric_rows: Sequence[Sequence[Any]]) -> None:
        """Bring totals up to date once `run_rows` (and their metrics) replaced what
        `before` (`stored_cells` of their ids) described."""
        stale = {cell for cell, had_results in before.values() if had_results}
        added: dict[Cell, list[str]] = {}
        for row in run_rows:
            cell = cell_of(row)
            if before.get(row[0], (None, False))[1]:
                stale.add(cell)  # recomputing reads the new version's metrics too
            else:
                added.setdefault(cell, []).append(row[0])
        merged = {cell: run_ids for cell, run_ids in added.items() if cell not in stale}
        if merged:
            values: dict[str, dict[MetricKey, list[float]]] = {}
            for run_id, _, _, bench, name, value, unit, _ in metric_rows:
                values.setdefault(run_id, {}).setdefault((bench, name, unit), []).append(value)
            self._merge(cur, {cell: [values.get(run_id, {}) for run_id in run_ids]
                              for cell, run_ids in merged.items()})
        for cell in stale:
            self.recompute(cur, cell)

    def after_delete(self, cur, before: dict[str, tuple[Cell, bool]]) -> None:
        for cell in {cell for cell, had_results in before.values() if had_results}:
            self.recompute(cur, cell)

    def _merge(self, cur, runs: dict[Cell, list[dict[MetricKey, list[float]]]]) -> None:
        """Merge new runs' values into their cells' totals: one read and one write for
        the whole batch (an import touches many cells)."""
        totals = self._stored_cells(cur, list(runs))
        rows = []
        for cell, cell_runs in runs.items():
            # The new runs' values per metric first, then one merge into the stored totals.
            values: dict[MetricKey, list[float]] = {}
            run_counts: dict[MetricKey, int] = {}
            for run in cell_runs:
                for key, found in run.items():
                    values.setdefault(key, []).extend(found)
                    run_counts[key] = run_counts.get(key, 0) + 1
            stored = totals.get(cell, {})
            keys = key_values(cell)
            for key, found in values.items():
                moments = Moments.of(found, run_counts[key])
                if key in stored:
                    moments = stored[key].merge(moments)
                rows.append((*keys, *key, *moments.row()))
        if rows:
            self._upsert(cur, rows)

    def _stored_cells(self, cur, cells: list[Cell]) -> dict[Cell, dict[MetricKey, Moments]]:
        out: dict[Cell, dict[MetricKey, Moments]] = {}
        width = len(KEY_COLUMNS)
        row_marks = f"({', '.join('?' * width)})"
        for start in range(0, len(cells), _CHUNK // width):
            chunk = cells[start:start + _CHUNK // width]
            cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM metric_totals "
                        f"WHERE ({', '.join(KEY_COLUMNS)}) IN "
                        f"(VALUES {', '.join([row_marks] * len(chunk))})",
                        [value for cell in chunk for value in key_values(cell)])
            for row in cur.fetchall():
                out.setdefault(_cell_of_keys(row[:width]), {})[tuple(row[width:width + 3])] = \
                    Moments(*row[width + 3:])
        return out

    def recompute(self, cur, cell: Cell) -> None:
        """Replace the cell's totals with statistics of its runs' stored metrics."""
        moments = self.computed(_fetcher(cur), cell)
        cur.execute(f"DELETE FROM metric_totals WHERE {self.totals_in_cell}", key_values(cell))
        self._write(cur, cell, moments)

    def _write(self, cur, cell: Cell, moments: dict[MetricKey, Moments]) -> None:
        if moments:
            keys = key_values(cell)
            self._upsert(cur, [(*keys, *key, *m.row()) for key, m in moments.items()])

    def _upsert(self, cur, rows: list[tuple]) -> None:
        if self.bulk_upsert is not None and len(rows) >= BULK_ROWS:
            self.bulk_upsert(cur, rows)
        else:
            cur.executemany(self.upsert, rows)

    def rebuild(self, cur) -> None:
        """Recompute every cell (the v3 migration's backfill), one cell at a time so memory
        stays bounded by the largest cell."""
        for cell in self.cells(_fetcher(cur)):
            self.recompute(cur, cell)

    # -- reading: `fetch(sql, params)` runs one query and returns its rows ---------------------
    def cells(self, fetch: Fetch) -> list[Cell]:
        return [tuple(row) for row in fetch(f"SELECT DISTINCT {', '.join(GROUP_KEYS)} FROM runs",
                                            ())]

    def computed(self, fetch: Fetch, cell: Cell) -> dict[MetricKey, Moments]:
        """The cell's totals computed afresh from its runs' metric values."""
        rows = fetch("SELECT m.benchmark, m.name, m.unit, m.run_id, m.value FROM runs r "
                     f"JOIN metrics m ON m.run_id = r.id WHERE {self.runs_in_cell}", cell)
        return moments_by_key(rows, 3)

    def stored(self, fetch: Fetch, cell: Cell) -> dict[MetricKey, Moments]:
        rows = fetch(f"SELECT benchmark, name, unit, {', '.join(STAT_COLUMNS)} "
                     f"FROM metric_totals WHERE {self.totals_in_cell}", key_values(cell))
        return {tuple(row[:3]): Moments(*row[3:]) for row in rows}

    def disagreements(self, fetch: Fetch, rel: float = 1e-9) -> list[str]:
        """How the stored totals differ from a recompute, cell by cell (empty when
        consistent). Counts, min and max must be equal; mean and standard deviation within
        `rel` of the size of the values (a spread near 0 is judged on that scale)."""
        problems = []
        in_totals = {_cell_of_keys(row) for row in fetch(
            f"SELECT DISTINCT {', '.join(KEY_COLUMNS)} FROM metric_totals", ())}
        for cell in set(self.cells(fetch)) | in_totals:
            want, have = self.computed(fetch, cell), self.stored(fetch, cell)
            for key in want.keys() | have.keys():
                a, b = want.get(key), have.get(key)
                if a is None or b is None or not _agree(a, b, rel):
                    problems.append(f"metric totals of {cell} {key}: stored {b}, "
                                    f"recomputed {a}")
        return problems


Fetch = Callable[[str, Sequence[Any]], list[tuple]]


def _fetcher(cur) -> Fetch:
    def fetch(sql: str, params: Sequence[Any]) -> list[tuple]:
        cur.execute(sql, params)
        return cur.fetchall()

    return fetch


def _agree(a: Moments, b: Moments, rel: float) -> bool:
    if (a.runs, a.n, a.low, a.high) != (b.runs, b.n, b.low, b.high):
        return False
    size = max(abs(a.low), abs(a.high))
    return all(x == y or (x is not None and y is not None and
                          abs(x - y) <= rel * max(abs(x), abs(y), size))
               for x, y in ((a.mean, b.mean), (a.stddev, b.stddev)))
