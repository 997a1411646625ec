"""A separate process writing to a store, for the concurrency and crash tests.

    python storeworker.py write URL WORKER COUNT GO_FILE
    python storeworker.py crash URL READY_FILE
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import attrs
from support.stores import make_run

from kitt._storage.open import open_store
from kitt._storage.sqlstore import SQLStore

SHARED = 5  # ids every writer saves, to race replacements of the same run


def write(url: str, worker: int, count: int, go_file: Path) -> None:
    with open_store(url) as store:
        store.list_runs(limit=1)  # connected: say so, then start together
        go_file.with_name(f"{go_file.name}.ready-{worker}").write_text("ready")
        while not go_file.exists():
            time.sleep(0.01)
        for j in range(count):
            store.save_run(make_run(j, run_id=f"w{worker}-{j:03d}", model=f"model-{worker}"))
            if j % 10 == 0:
                shared = make_run(j, run_id=f"shared-{j // 10 % SHARED}", repeats=1 + worker % 3)
                store.save_run(attrs.evolve(shared, model=f"from-{worker}"))


def crash(url: str, ready_file: Path) -> None:
    with open_store(url) as store:
        store.save_run(make_run(1, run_id="before"))
        original = SQLStore._write

        def write_then_hang(self, cur, batch):
            original(self, cur, batch)  # every row written, transaction still open
            ready_file.write_text("ready")
            time.sleep(600)  # killed here

        SQLStore._write = write_then_hang
        store.save_run(make_run(2, run_id="crashed", repeats=50, metrics=20))


if __name__ == "__main__":
    mode, url, *rest = sys.argv[1:]
    if mode == "write":
        write(url, int(rest[0]), int(rest[1]), Path(rest[2]))
    else:
        crash(url, Path(rest[0]))
