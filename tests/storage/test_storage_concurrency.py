"""Real processes: concurrent writers lose and duplicate nothing; a writer killed inside
its transaction leaves no trace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import subprocess_env, wait_until
from support.stores import assert_same_aggregates, make_run

from kitt import BadInput
from kitt._compare.compare import metric_values
from kitt._storage import aggregate as aggmod
from kitt._storage.contract import EVERY_RUN, GROUP_KEYS
from kitt._storage.open import open_store

WORKER = Path(__file__).with_name("storeworker.py")
WRITERS = 8
RUNS_EACH = 50


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=WORKER.parent,
                            env=subprocess_env())


@pytest.mark.slow
def test_eight_concurrent_writers_lose_and_duplicate_nothing(store_url, tmp_path):
    open_store(store_url).close()  # created once; the writers race on data, not on DDL
    go = tmp_path / "go"
    workers = [_spawn("write", store_url, str(w), str(RUNS_EACH), str(go))
               for w in range(WRITERS)]

    def all_connected() -> bool:  # each writer says so with a file, then waits for "go"
        assert all(worker.poll() is None for worker in workers), "a writer died early"
        return all((tmp_path / f"go.ready-{w}").exists() for w in range(WRITERS))

    wait_until(all_connected, timeout=120, what="every writer to connect")
    go.write_text("go")
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    with open_store(store_url) as store:
        ids = [s.id for s in store.list_runs()]
        expected = {f"w{w}-{j:03d}" for w in range(WRITERS) for j in range(RUNS_EACH)}
        assert len(ids) == len(set(ids)) == len(expected) + 5
        assert set(ids) == expected | {f"shared-{k}" for k in range(5)}
        for w in (0, WRITERS - 1):
            assert store.get_run(f"w{w}-007") == make_run(7, run_id=f"w{w}-007",
                                                         model=f"model-{w}")
        # Each shared run is whole: its rows belong to the one document that won. And
        # check() recomputes every group's metric totals from the metric values: the
        # racing saves and replacements left them exact.
        assert store.check() == []
        for k in range(5):
            run = store.get_run(f"shared-{k}")
            stored = store.comparison_values([run.id])[0]
            assert metric_values(stored.results) == metric_values(run.results)
            assert len(metric_values(run.results)) == 3 + 1
            assert len(run.results) == run.results[-2].run_number + 1
        for keys in (["model", "engine"], list(GROUP_KEYS)):
            assert_same_aggregates(aggmod.from_totals(store._query, EVERY_RUN, keys),
                                   aggmod.by_scan(store._query, store._where, EVERY_RUN, keys))
        counts = store.stats()["counts"]
        shared_results = sum(len(store.get_run(f"shared-{k}").results) for k in range(5))
        assert counts["results"] == len(expected) * 3 + shared_results


@pytest.mark.slow
def test_a_writer_killed_mid_transaction_leaves_the_store_consistent(store_url, tmp_path):
    open_store(store_url).close()
    ready = tmp_path / "ready"
    writer = _spawn("crash", store_url, str(ready))

    def in_transaction() -> bool:
        assert writer.poll() is None, writer.communicate()[1]
        return ready.exists()

    wait_until(in_transaction, timeout=120, what="the writer to reach its transaction")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    with open_store(store_url) as store:
        assert [s.id for s in store.list_runs()] == ["before"]
        with pytest.raises(BadInput):
            store.get_run("crashed")
        assert store.stats()["counts"]["results"] == 3
        assert store.check() == []  # SQLite: integrity_check and foreign keys too
        store.save_run(make_run(2, run_id="crashed"))  # and the store still takes writes
        assert store.get_run("crashed") == make_run(2, run_id="crashed")
