"""Plugins' own tables in a SQL store's database (`Store.database`), each namespace with
its own schema version, kept in `plugin_schemas` beside KARR's `schema_version`.

That table is created on a namespace's first use rather than by a KARR migration, so a
store that no plugin asks for tables stays exactly KARR's schema, and opening it needs no
`kitt storage migrate`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kitt._storage.contract import Cursor, Database, Migration
from kitt.errors import BadInput

_NAMESPACE = re.compile(r"[a-z][a-z0-9_]{0,30}")
_TYPES = {
    "sqlite": {"id": "TEXT", "text": "TEXT", "int": "INTEGER", "real": "REAL"},
    # COLLATE "C": byte order, as SQLite compares, so prefixes and ranges agree.
    "postgresql": {"id": 'TEXT COLLATE "C"', "text": "TEXT", "int": "BIGINT",
                   "real": "DOUBLE PRECISION"},
}


class PluginTables(Database):
    def __init__(self, store: Any, namespace: str) -> None:
        """`store`: the `sqlstore.SQLStore` whose connection and locks these tables use
        (not imported: sqlstore imports this module)."""
        if not _NAMESPACE.fullmatch(namespace):
            raise BadInput(f"bad plugin table namespace {namespace!r}",
                           hint="use lowercase letters, digits and _, starting with a letter")
        self.store = store
        self.dialect = store.dialect
        self.namespace = namespace

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self.store._transaction() as cur:
            self.store._lock_writers(cur)
            yield cur

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.store._query(sql, params)

    def format(self, sql: str) -> str:
        """Migration SQL with its column types ({id} {text} {int} {real}) for this dialect."""
        return sql.format(**_TYPES[self.dialect])

    def migrate(self, migrations: Sequence[Migration]) -> list[int]:
        """Apply the steps after the stored version, in one transaction; the versions
        applied."""
        target = len(migrations)
        with self.store._transaction() as cur:
            self.store._lock_schema(cur)  # two first starts must not both create tables
            self.store._lock_writers(cur)
            cur.execute(self.format("CREATE TABLE IF NOT EXISTS plugin_schemas "
                                    "(namespace {id} PRIMARY KEY, version {int} NOT NULL)"))
            cur.execute("SELECT version FROM plugin_schemas WHERE namespace = ?",
                        (self.namespace,))
            row = cur.fetchone()
            current = int(row[0]) if row else 0
            if current > target:
                raise BadInput(
                    f"the store at {self.store.url} holds {self.namespace!r} tables of "
                    f"version {current}, newer than this plugin writes (up to {target})",
                    hint=f"upgrade the plugin that owns the {self.namespace!r} tables")
            for step in migrations[current:]:
                if callable(step):
                    step(cur)
                else:
                    cur.execute(self.format(step))
            if target > current:
                cur.execute("DELETE FROM plugin_schemas WHERE namespace = ?",
                            (self.namespace,))
                cur.execute("INSERT INTO plugin_schemas (namespace, version) VALUES (?, ?)",
                            (self.namespace, target))
        return list(range(current + 1, target + 1))

    def version(self) -> int:
        rows = self.query("SELECT version FROM plugin_schemas WHERE namespace = ?",
                          (self.namespace,))
        return int(rows[0][0]) if rows else 0
