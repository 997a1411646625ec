"""Signal tests' helpers around the `stall` test engine (tests/fixtures/plugins/
kitt-engine-stall): its log, the runs a stopped command stored, and what it must leave."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from kitt._util.converter import from_json
from kitt.records import Run
from support import assert_no_processes

SIGNALS = [signal.SIGINT, signal.SIGTERM]
TARGETS = ["pid", "group"]
SERVER = "kitt_engine_stall.server"
"""Marks the stall engine's server processes (their command line)."""

STALLED_EVAL = """\
name: stalled
dataset: {path: stalled.jsonl}
prompt: "Q: {{question}}\\nA:"
target: "{{answer}}"
generation: {max_tokens: 8}
"""
SUITES = {
    "hello": "benchmarks: [hello]\n",
    "perf": "benchmarks:\n  - name: throughput\n    params: {concurrency: 2, requests: 4, "
            "prompt_tokens: 16, max_tokens: 8}\n",
    "perf-workers": "benchmarks:\n  - name: throughput\n    params: {concurrency: 2, "
                    "workers: 2, requests: 4, prompt_tokens: 16, max_tokens: 8}\n",
    "quality": "benchmarks:\n  - name: stalled\n    params: {concurrency: 1}\n",
}


def signal_name(sig: int) -> str:
    return signal.Signals(sig).name


def write_stall_home(folder: Path, home: Path) -> None:
    """The `stalled` custom evaluation in `home`, and the SUITES as FOLDER/NAME.yaml."""
    evals = home / "evals"
    evals.mkdir(parents=True, exist_ok=True)
    (evals / "stalled.yaml").write_text(STALLED_EVAL)
    (evals / "stalled.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n'
                                         '{"question": "2+2?", "answer": "4"}\n')
    for name, benchmarks in SUITES.items():
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\nwarmup: {{requests: 2, max_tokens: 4}}\n{benchmarks}")


def engine_log(folder: Path) -> str:
    """The engine's output in a results folder: beside the run while it runs,
    `engine.log` once it is stored."""
    logs = [*folder.glob("*-stall.log"), *folder.glob("engine.log")]
    return logs[0].read_text(errors="replace") if logs else ""


def stored_runs(db: Path) -> list[Run]:
    """Every run in the SQLite store at `db`, read as the documents KITT wrote."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [from_json(doc, Run) for (doc,) in
                conn.execute("SELECT document FROM run_documents")]


def assert_interrupted_cleanly(code: int, err: str, sig: int) -> None:
    """Exit 128 + N with KITT's one-line account, no traceback, no engine or load
    worker process left."""
    assert code == 128 + sig, err
    assert f"kitt: interrupted by {signal_name(sig)}" in err, err
    assert "Traceback" not in err, err
    assert_no_processes(SERVER)
    assert_no_processes("multiprocessing.spawn")  # kitt-bench-perf's worker processes
