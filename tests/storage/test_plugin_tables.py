"""Plugins' own tables in the store's database (`Store.database`): versioned migrations
per namespace, transactions that roll back whole, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest

from kitt import BadInput, open_store

NOTES_V1 = ["CREATE TABLE notes_items (id {id} PRIMARY KEY, body {text} NOT NULL, "
            "weight {real}, n {int})"]
NOTES_V2 = [*NOTES_V1, "ALTER TABLE notes_items ADD COLUMN tag {text}"]


def test_migrations_apply_once_and_in_order(store_url):
    with open_store(store_url) as store:
        db = store.database("notes", NOTES_V1)
        with db.transaction() as cur:
            cur.execute("INSERT INTO notes_items (id, body, weight, n) VALUES (?, ?, ?, ?)",
                        ("a", "first", 1.5, 2))
    with open_store(store_url) as store:
        db = store.database("notes", NOTES_V2)  # only step 2 is new
        assert db.version() == 2
        with db.transaction() as cur:
            cur.execute("UPDATE notes_items SET tag = ? WHERE id = ?", ("x", "a"))
            assert cur.rowcount == 1
        assert db.query("SELECT id, body, weight, n, tag FROM notes_items") == [
            ("a", "first", 1.5, 2, "x")]
        # Asking again for the same version applies nothing and keeps the data.
        assert store.database("notes", NOTES_V2).migrate(NOTES_V2) == []
        assert db.query("SELECT count(*) FROM notes_items") == [(1,)]


def test_a_failing_transaction_leaves_nothing(store):
    db = store.database("notes", NOTES_V1)
    with pytest.raises(RuntimeError), db.transaction() as cur:
        cur.execute("INSERT INTO notes_items (id, body) VALUES (?, ?)", ("a", "kept?"))
        raise RuntimeError("half way")
    assert db.query("SELECT count(*) FROM notes_items") == [(0,)]


def test_a_failing_migration_applies_none_of_its_steps(store):
    broken = [*NOTES_V1, "CREATE TABLE notes_more (id {id})", "NOT SQL AT ALL"]
    with pytest.raises(Exception):  # noqa: B017 - the driver's own syntax error
        store.database("notes", broken)
    db = store.database("notes", NOTES_V1)
    assert db.version() == 1
    tables = ("SELECT name FROM sqlite_master WHERE name = 'notes_more'"
              if db.dialect == "sqlite" else "SELECT to_regclass('notes_more')::text")
    assert db.query(tables) in ([], [(None,)])


def test_namespaces_are_versioned_apart_and_karr_is_untouched(store):
    store.database("notes", NOTES_V2)
    other = store.database("other", ["CREATE TABLE other_x (id {id})"])
    assert other.version() == 1
    assert store.database("notes", NOTES_V2).version() == 2
    assert store.schema_version() == store.schema_versions
    assert store.check() == []


def test_a_newer_plugin_schema_is_refused(store):
    store.database("notes", NOTES_V2)
    with pytest.raises(BadInput, match="newer than this plugin"):
        store.database("notes", NOTES_V1)


@pytest.mark.parametrize("name", ["", "Notes", "1x", "a-b", "a;drop", "x" * 40])
def test_bad_namespaces_are_refused(store, name):
    with pytest.raises(BadInput, match="namespace"):
        store.database(name, NOTES_V1)
