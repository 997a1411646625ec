"""KARR as a built-in plugin: the SQLite and PostgreSQL backends and `kitt storage`."""

from kitt import hookimpl


@hookimpl
def register_storage_backends(register):
    from kitt.storage.backends import PostgresBackend, SQLiteBackend

    register(SQLiteBackend())
    register(PostgresBackend())


@hookimpl
def register_commands(cli):
    from kitt.storage.cli import storage

    cli.add_command(storage)
