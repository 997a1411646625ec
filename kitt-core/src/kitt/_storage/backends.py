"""The built-in storage backends, a plugin like any other (`kitt.plugins.DEFAULT_PLUGINS`).
Cheap to import: each opens its driver lazily, because plugin modules are imported for
every `kitt` command."""

from __future__ import annotations

from kitt._storage.contract import StorageBackend, Store
from kitt.hookspecs import hookimpl


class SQLiteBackend(StorageBackend):
    name = "sqlite"
    schemes = ("sqlite",)

    def open(self, url: str, *, create: bool = True) -> Store:
        from kitt._storage.sqlite import SQLiteStore

        return SQLiteStore(url, create=create)


class PostgresBackend(StorageBackend):
    name = "postgresql"
    schemes = ("postgresql", "postgres")

    def open(self, url: str, *, create: bool = True) -> Store:
        from kitt._storage.postgres import PostgresStore

        return PostgresStore(url, create=create)


@hookimpl
def register_storage_backends(register):
    register(SQLiteBackend())
    register(PostgresBackend())
