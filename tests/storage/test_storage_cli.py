"""`kitt storage` as a user runs it: real subprocesses, both backends, exit codes."""

from __future__ import annotations

import json

import pytest
from support import require, run_kitt
from support.stores import POSTGRES_URL, make_run, postgres_reachable, raw_store, save_as_of

from kitt._storage.open import open_store
from kitt._storage.url import resolve_url
from kitt._util.converter import to_json


def kitt_store(url, *args, home):
    return run_kitt("storage", *args, "--store", url, env={"KITT_HOME": str(home)})


def test_the_whole_workflow_from_the_command_line(store_url, tmp_path):
    exports = tmp_path / "in"
    exports.mkdir()
    for i in range(3):
        (exports / f"{i}.json").write_text(to_json(make_run(i, model="a" if i < 2 else "b")))
    k = lambda *args: kitt_store(store_url, *args, home=tmp_path)  # noqa: E731

    done = k("init")
    assert done.returncode == 0, done.stderr
    assert "***" in done.stdout or "sqlite" in store_url
    done = k("import", str(exports), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"added": 3, "replaced": 0, "unchanged": 0}
    assert json.loads(k("import", str(exports), "--json").stdout)["unchanged"] == 3

    listed = json.loads(k("list", "--model", "a", "--json").stdout)
    assert [row["id"] for row in listed] == ["run-00001", "run-00000"]
    assert k("list", "--limit", "1").stdout.count("run-0000") == 1

    shown = json.loads(k("show", "run-00002", "--json").stdout)
    assert shown == json.loads(to_json(make_run(2, model="b")))
    assert "throughput" in k("show", "run-00002").stdout

    stats = json.loads(k("stats", "--json").stdout)
    assert stats["counts"]["runs"] == 3

    # `kitt storage compare` is `kitt results compare` (docs/reports.md): same document.
    done = k("compare", "run-00000", "run-00001", "--json")
    assert done.returncode == 0, done.stderr  # 1% faster: no regression
    compared = json.loads(done.stdout)
    assert compared["baseline"] == "run-00000"
    assert [run["id"] for run in compared["runs"]] == ["run-00000", "run-00001"]
    m0 = next(row for row in compared["rows"] if row["metric"] == "m0")
    assert m0["values"][0]["stats"]["n"] == 2 and m0["values"][1]["delta"] == 1.0
    same = run_kitt("results", "compare", "run-00000", "run-00001", "--json", "--store",
                    store_url, env={"KITT_HOME": str(tmp_path)})
    assert json.loads(same.stdout) == compared
    assert "m0" in k("compare", "run-00000", "run-00001").stdout

    rows = json.loads(k("aggregate", "--group-by", "model", "--json").stdout)
    a = next(r for r in rows if r["group"] == {"model": "a"} and r["metric"] == "m0")
    assert (a["runs"], a["n"]) == (2, 4)
    assert a["stddev"] > 0 and a["cv"] > 0

    out = k("export", "--format", "jsonl")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3
    assert k("export", "--format", "csv", "--model", "b").stdout.startswith("run_id,model")

    deleted = k("delete", "run-00000", "--json")
    assert json.loads(deleted.stdout) == {"deleted": ["run-00000"]}
    assert len(json.loads(k("list", "--json").stdout)) == 2


def test_errors_are_bad_input_with_exit_code_2(store_url, tmp_path):
    k = lambda *args: kitt_store(store_url, *args, home=tmp_path)  # noqa: E731
    missing = k("list")  # nothing created yet
    assert missing.returncode == 2 and "kitt storage init" in missing.stderr
    assert k("init").returncode == 0
    for args in (("show", "nope"), ("compare", "a"), ("aggregate", "--group-by", "bad"),
                 ("list", "--since", "yesterday"), ("delete", "nope")):
        done = k(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("Error:") and done.stdout == ""


def test_a_corrupt_import_file_writes_nothing_not_even_a_new_store(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "x", "model": ')
    db = tmp_path / "new.db"
    done = kitt_store(f"sqlite://{db}", "import", str(bad), home=tmp_path)
    assert done.returncode == 2
    assert "bad.json is not valid JSON" in done.stderr
    assert not db.exists()


def test_a_newer_schema_is_refused(store_url, tmp_path):
    with open_store(store_url) as store:
        latest = store.schema_versions
        with store._transaction() as cur:
            cur.execute("UPDATE schema_version SET version = ?", (latest + 1,))
    for command in ("list", "migrate"):
        done = kitt_store(store_url, command, home=tmp_path)
        assert done.returncode == 2
        assert f"schema version {latest + 1}, newer than this KITT" in done.stderr
        assert "upgrade kitt-core" in done.stderr


def test_an_older_schema_asks_for_migrate_then_migrates(store_url, tmp_path):
    with raw_store(store_url) as store:
        assert store.migrate(target=1) == [1]
        save_as_of(store, [make_run(1)], 1)
    done = kitt_store(store_url, "list", home=tmp_path)
    assert done.returncode == 2 and "kitt storage migrate" in done.stderr
    done = kitt_store(store_url, "migrate", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applied"] == list(range(2, store.schema_versions + 1))
    assert kitt_store(store_url, "show", "run-00001", home=tmp_path).returncode == 0


def test_sqlite_errors_name_the_file(tmp_path):
    not_db = tmp_path / "junk.db"
    not_db.write_bytes(b"this is not a database file at all" * 100)
    done = kitt_store(f"sqlite://{not_db}", "list", home=tmp_path)
    assert done.returncode == 2 and "junk.db" in done.stderr
    done = kitt_store("sqlite://somehost/x.db", "list", home=tmp_path)
    assert done.returncode == 2 and "three slashes" in done.stderr
    done = kitt_store("mongodb://x/y", "list", home=tmp_path)
    assert done.returncode == 2 and "no storage backend" in done.stderr


@pytest.mark.postgres
@pytest.mark.parametrize(("change", "expected"), [
    (lambda u: u.replace("kitt_test@", "wrong-password@"), "password authentication failed"),
    (lambda u: u.replace(":5432", ":5439"), "cannot connect"),
    (lambda u: u.rsplit("/", 1)[0] + "/no_such_db", 'database "no_such_db" does not exist'),
    (lambda u: u.replace("127.0.0.1", "10.255.255.1") + "?connect_timeout=2", "cannot connect"),
])
def test_postgres_connection_errors_are_quick_clear_and_mask_the_password(change, expected,
                                                                          tmp_path):
    ok, reason = postgres_reachable()
    require("postgres", ok, reason)
    url = change(POSTGRES_URL)
    done = run_kitt("storage", "list", "--store", url, env={"KITT_HOME": str(tmp_path)},
                    timeout=30)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "***@" in done.stderr
    password = url.split("//", 1)[1].split("@")[0].split(":")[1]
    assert f":{password}@" not in done.stderr


def test_store_url_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("KITT_HOME", str(tmp_path))
    monkeypatch.delenv("KITT_STORE", raising=False)
    assert resolve_url() == f"sqlite://{tmp_path / 'kitt.db'}"
    (tmp_path / "config.yaml").write_text("store: sqlite:///from/config.db\n")
    assert resolve_url() == "sqlite:///from/config.db"
    monkeypatch.setenv("KITT_STORE", "sqlite:///from/env.db")
    assert resolve_url() == "sqlite:///from/env.db"
    assert resolve_url("sqlite:///from/option.db") == "sqlite:///from/option.db"


def test_the_default_store_lives_in_kitt_home(tmp_path):
    (tmp_path / "r.json").write_text(to_json(make_run(1)))
    done = run_kitt("storage", "import", str(tmp_path / "r.json"),
                    env={"KITT_HOME": str(tmp_path / "home"), "KITT_STORE": ""})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home" / "kitt.db").is_file()
