"""Schema versions: migrating from every earlier version ends where a fresh store starts,
with the data intact; and a third backend can be plugged in."""

from __future__ import annotations

import pytest
from storefixtures import make_run, raw_store, store_url  # noqa: F401

from kitt import BadInput, StorageBackend, hookimpl, plugins
from kitt.storage import open_store, schema


def _fresh_schema(store_url) -> dict[str, str]:  # noqa: F811
    with open_store(store_url) as store:
        return store.schema_objects()


@pytest.mark.parametrize("start", range(schema.LATEST))
def test_migrating_from_each_earlier_version_gives_the_fresh_schema(store_url, start):  # noqa: F811
    with raw_store(store_url) as store:
        assert store.migrate(target=start) == list(range(1, start + 1))
        if start >= 1:
            # Written by today's code; valid while later migrations only add indexes.
            # A migration that changes tables must write this fixture data in SQL of `start`.
            store.save_runs([make_run(1), make_run(2)])
    if start >= 1:
        with pytest.raises(BadInput, match="kitt storage migrate"):
            open_store(store_url)
    with raw_store(store_url) as store:
        assert store.migrate() == list(range(start + 1, schema.LATEST + 1))
    with open_store(store_url, create=False) as store:
        assert store.schema_version() == schema.LATEST
        assert store.migrate() == []  # migrating again is a no-op
        migrated = store.schema_objects()
        if start >= 1:
            assert store.get_run("run-00002") == make_run(2)
            assert store.check() == []
        store.save_run(make_run(3))
    # Same objects as a brand-new store (compared in a second store of the same backend).
    if store_url.startswith("sqlite"):
        fresh_url = store_url.replace("karr.db", "fresh.db")
        assert _fresh_schema(fresh_url) == migrated
    else:
        from storefixtures import drop_schema

        fresh_url = store_url.replace("schema=", "schema=f")
        try:
            assert _fresh_schema(fresh_url) == migrated
        finally:
            drop_schema(fresh_url.split("schema=")[1])


def test_every_dialect_has_every_version():
    for dialect, steps in schema.MIGRATIONS.items():
        assert len(steps) == schema.LATEST, dialect
        for version in range(1, schema.LATEST + 1):
            assert schema.statements(dialect, version)


def test_a_third_backend_can_be_added_by_a_plugin(tmp_path):
    """A plugin claiming a new URL scheme is picked by open_store; here it keeps an SQLite
    file under a `memo://NAME` URL."""
    from kitt.storage.sqlite import SQLiteStore

    class MemoBackend(StorageBackend):
        name = "memo"
        schemes = ("memo",)

        def open(self, url, *, create=True):
            return SQLiteStore(f"sqlite://{tmp_path / url.split('//')[1]}.db", create=create)

    class Plugin:
        @hookimpl
        def register_storage_backends(self, register):
            register(MemoBackend())

    plugin = Plugin()
    plugins.load_plugins()
    plugins.pm.register(plugin, name="memo-test")
    try:
        assert plugins.storage_backends()["memo"].name == "memo"
        with open_store("memo://one") as store:
            store.save_run(make_run(1))
        with open_store("memo://one", create=False) as store:
            assert store.get_run("run-00001") == make_run(1)
        assert (tmp_path / "one.db").is_file()
    finally:
        plugins.pm.unregister(plugin)
