"""Schema versions: migrating from every earlier version ends where a fresh store starts,
with the data intact; and a third backend can be plugged in."""

from __future__ import annotations

import attrs
import pytest
from support.stores import assert_same_aggregates, drop_schema, make_run, raw_store, save_as_of

from kitt import BadInput, StorageBackend, hookimpl, plugins
from kitt._compare.compare import metric_values
from kitt._storage import aggregate as aggmod
from kitt._storage import schema
from kitt._storage.contract import GROUP_KEYS, RunFilter
from kitt._storage.open import open_store

# Parameters the v3 backfill must copy exactly: JSONB would change 1e300 and -0.0.
SWEEP = {"load": {"concurrency": 8, "ramp": [1, 2.5]}, "big": 1e300, "neg_zero": -0.0,
         "text": "é\u0000\n", "none": None}


def _fixture_runs():
    # More runs than the backfill reads at once (100), in several cells.
    return [make_run(1), attrs.evolve(make_run(2, model="b"), engine_version=None),
            make_run(3, params=SWEEP, value=1e6 + 0.125),
            make_run(4, params={"load": {"concurrency": 1}}, status="failed"),
            *(make_run(i, repeats=1, metrics=1, params={"i": i}, suite=f"s{i % 3}")
              for i in range(5, 110))]


def _fresh_schema(store_url) -> dict[str, str]:
    with open_store(store_url) as store:
        return store.schema_objects()


@pytest.mark.parametrize("start", range(schema.LATEST))
def test_migrating_from_each_earlier_version_gives_the_fresh_schema(store_url, start):
    with raw_store(store_url) as store:
        assert store.migrate(target=start) == list(range(1, start + 1))
        if start >= 1:
            # The rows KITT wrote at `start`.
            save_as_of(store, _fixture_runs(), start)
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
            assert store.get_run("run-00002") == _fixture_runs()[1]
            assert store.check() == []  # includes: the backfilled totals equal a recompute
            _assert_backfilled(store)
        store.save_run(make_run(5))
        assert store.check() == []
    # Same objects as a brand-new store (compared in a second store of the same backend).
    if store_url.startswith("sqlite"):
        fresh_url = store_url.replace("karr.db", "fresh.db")
        assert _fresh_schema(fresh_url) == migrated
    else:
        fresh_url = store_url.replace("schema=", "schema=f")
        try:
            assert _fresh_schema(fresh_url) == migrated
        finally:
            drop_schema(fresh_url.split("schema=")[1])


def _assert_backfilled(store) -> None:
    """v3 filled results.params from the documents and the totals from the metrics."""
    runs = _fixture_runs()
    stored = store.comparison_values([run.id for run in runs])
    assert stored[-1].results[0].params == {"i": 109}
    for run, found in zip(runs, stored, strict=True):
        assert [r.params for r in found.results] == [r.params for r in run.results]
        assert metric_values(found.results) == metric_values(run.results)
    assert str(stored[2].results[0].params["neg_zero"]) == "-0.0"
    for keys in (["model", "engine"], list(GROUP_KEYS), []):
        totals = aggmod.from_totals(store._query, RunFilter(), keys)
        assert_same_aggregates(totals, aggmod.by_scan(store._query, store._where, RunFilter(),
                                                      keys))
        assert len(totals) > 0


def test_every_dialect_has_every_version():
    for dialect, steps in schema.MIGRATIONS.items():
        assert len(steps) == schema.LATEST, dialect
        for version in range(1, schema.LATEST + 1):
            assert schema.statements(dialect, version)
        assert schema.statements(dialect, 3)[1] == schema.DataStep("result_params")


def test_a_third_backend_can_be_added_by_a_plugin(tmp_path):
    """A plugin claiming a new URL scheme is picked by open_store; here it keeps an SQLite
    file under a `memo://NAME` URL."""
    from kitt._storage.sqlite import SQLiteStore

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
