"""The built-in backends' plugin objects. Cheap to import: each opens its driver lazily,
because plugin modules are imported for every `kitt` command."""

from __future__ import annotations

from kitt.store import StorageBackend


class SQLiteBackend(StorageBackend):
    name = "sqlite"
    schemes = ("sqlite",)

    def open(self, url: str, *, create: bool = True):
        from kitt.storage.sqlite import SQLiteStore

        return SQLiteStore(url, create=create)


class PostgresBackend(StorageBackend):
    name = "postgresql"
    schemes = ("postgresql", "postgres")

    def open(self, url: str, *, create: bool = True):
        from kitt.storage.postgres import PostgresStore

        return PostgresStore(url, create=create)
