"""`Store.aggregate` for the SQL stores: from the maintained totals when they can answer,
else by scanning the metric values.

The totals (`kitt._storage.totals`) are kept per cell, one value of every GROUP_KEYS field,
so any filter on and grouping by those fields is a merge of totals rows: a few thousand
rows for a whole store, not millions of values. Only a start-time range (`since`/`until`)
or an id list is finer than a cell; those scan the metric values of the matching runs.

Both paths merge in Python with the same `Moments` arithmetic and sort groups the same way
(Python's code point order, which is SQLite's and PostgreSQL "C" byte order for UTF-8; an
unset engine_version first), so they return identical rows up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from kitt._storage.contract import GROUP_KEYS, AggregateRow, RunFilter
from kitt._storage.totals import Moments, moments_by_key
from kitt.errors import BadInput

Query = Callable[[str, Sequence[Any]], list[tuple]]
Where = Callable[[RunFilter], tuple[str, list[Any]]]


def check_group_by(group_by: Sequence[str]) -> list[str]:
    unknown = [key for key in group_by if key not in GROUP_KEYS]
    if unknown:
        raise BadInput(f"cannot group by {', '.join(unknown)}",
                       hint=f"group by any of: {', '.join(GROUP_KEYS)}")
    return list(dict.fromkeys(group_by))


def totals_cover(where: RunFilter) -> bool:
    """Whether the totals can answer `where` (every GROUP_KEYS filter can; time ranges and
    id lists and metric bounds are finer than a cell)."""
    return (where.since is None and where.until is None and where.ids is None
            and not where.metrics)


def from_totals(query: Query, where: RunFilter, keys: list[str]) -> list[AggregateRow]:
    columns = [("CASE WHEN has_engine_version THEN engine_version END"
                if key == "engine_version" else key) for key in keys]
    clauses, params = [], []
    for key in GROUP_KEYS:
        value = getattr(where, key)
        if value is not None:
            clauses.append(f"{key} = ?")
            params.append(value)
            if key == "engine_version":
                clauses.append("has_engine_version = ?")
                params.append(True)
    clause = " WHERE " + " AND ".join(clauses) if clauses else ""
    rows = query(f"SELECT {', '.join([*columns, 'benchmark', 'name', 'unit'])}, runs, n, mean, "
                 f"m2, low, high FROM metric_totals{clause}", params)
    width = len(keys) + 3
    parts: dict[tuple, list[tuple]] = {}
    for row in rows:
        group = tuple(row[:width])
        found = parts.get(group)
        if found is None:
            parts[group] = [row[width:]]
        else:
            found.append(row[width:])
    return _rows(keys, {group: Moments.combine(found) for group, found in parts.items()})


def by_scan(query: Query, where_sql: Where, where: RunFilter,
            keys: list[str]) -> list[AggregateRow]:
    clause, params = where_sql(where)
    columns = ", ".join([*(f"r.{key}" for key in keys), "m.benchmark", "m.name", "m.unit",
                         "m.run_id", "m.value"])
    rows = query(f"SELECT {columns} FROM runs r JOIN metrics m ON m.run_id = r.id{clause}",
                 params)
    return _rows(keys, moments_by_key(rows, len(keys) + 3))


def _rows(keys: list[str], groups: dict[tuple, Moments]) -> list[AggregateRow]:
    out = []
    for group in sorted(groups, key=_order):
        m = groups[group]
        stddev = m.stddev
        cv = stddev / abs(m.mean) if stddev is not None and m.mean else None
        out.append(AggregateRow(
            group=dict(zip(keys, group[:len(keys)], strict=True)), benchmark=group[-3],
            metric=group[-2], unit=group[-1], runs=m.runs, n=m.n, mean=m.mean, stddev=stddev,
            cv=cv if cv is None or math.isfinite(cv) else None, min=m.low, max=m.high))
    return out


def _order(group: tuple) -> tuple:
    return tuple((0, "") if value is None else (1, value) for value in group)
