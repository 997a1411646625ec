"""Flattening a Run into the normalized tables' rows (the same for every SQL dialect).

`clean_text` and `ts` adapt values to a dialect: PostgreSQL text cannot hold NUL
characters and takes datetimes, SQLite stores fixed-width UTC ISO strings (which sort
and compare correctly as text).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from kitt.records import Run

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("id", "model", "engine", "engine_version", "mode", "image", "suite", "status",
             "started_at", "finished_at", "kitt_version", "fingerprint", "config", "error",
             "benchmarks", "passed", "saved_at"),
    "run_documents": ("run_id", "document"),
    "hardware": ("run_id", "fingerprint", "gpu_count", "gpu_names", "gpu_memory_mib",
                 "driver_version", "cuda_version", "unified_memory", "gpu_source",
                 "cpu_brand", "cpu_architecture", "cpu_cores", "cpu_threads",
                 "memory_total_mib", "memory_type", "storage_kind", "storage_model",
                 "os_system", "os_distribution", "os_version", "kernel", "environment"),
    "results": ("run_id", "position", "name", "version", "run_number", "passed", "error",
                "started_at", "finished_at", "params"),
    "metrics": ("run_id", "position", "seq", "benchmark", "name", "value", "unit",
                "direction"),
    "request_samples": ("run_id", "position", "seq", "start_ms", "ok", "ttft_ms", "e2e_ms",
                        "itl_mean_ms", "input_tokens", "output_tokens", "error"),
    "item_records": ("run_id", "position", "seq", "item_id", "correct", "subject", "scores"),
}
CHILD_TABLES = ("run_documents", "hardware", "results", "metrics", "request_samples",
                "item_records")


def utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso_utc(value: datetime) -> str:
    return utc(value).isoformat(timespec="microseconds")


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, sort_keys=True)


def params_json(params: Any) -> str:
    """A result's parameters as canonical JSON text (sorted keys). Stored as text on every
    backend, NUL characters escaped as JSON escapes them, so it reads back exactly."""
    return _json(params)


def run_rows(run: Run, document: str, saved_at: datetime,
             ts: Callable[[datetime], Any], clean_text: Callable[[Any], Any],
             clean_json: Callable[[str], str]) -> dict[str, list[tuple]]:
    """Every row `run` contributes, by table. `document` is `to_json(run)`."""
    t = clean_text
    hw = run.hardware
    gpus = hw.gpu.gpus
    gpu_memory = [g.memory_mib for g in gpus if g.memory_mib is not None]
    rows: dict[str, list[tuple]] = {name: [] for name in TABLE_COLUMNS}
    rows["runs"].append((
        run.id, t(run.model), t(run.engine.engine), t(run.engine_version), t(run.engine.mode),
        t(run.engine.image), t(run.suite), t(run.status), ts(run.started_at),
        ts(run.finished_at) if run.finished_at else None, t(run.kitt_version),
        t(hw.fingerprint), clean_json(_json(run.config)), t(run.error), len(run.results),
        sum(1 for r in run.results if r.passed), ts(saved_at),
    ))
    rows["run_documents"].append((run.id, document))
    rows["hardware"].append((
        run.id, t(hw.fingerprint), len(gpus), t(", ".join(g.name for g in gpus)) or None,
        sum(gpu_memory) if gpu_memory else None, t(hw.gpu.driver_version),
        t(hw.gpu.cuda_version), hw.gpu.unified_memory, t(hw.gpu.source), t(hw.cpu.brand),
        t(hw.cpu.architecture), hw.cpu.cores, hw.cpu.threads, hw.memory.total_mib,
        t(hw.memory.type), t(hw.storage.kind), t(hw.storage.model), t(hw.os.system),
        t(hw.os.distribution), t(hw.os.version), t(hw.os.kernel), t(hw.environment),
    ))
    for pos, result in enumerate(run.results):
        rows["results"].append((
            run.id, pos, t(result.name), t(result.version), result.run_number, result.passed,
            t(result.error), ts(result.started_at) if result.started_at else None,
            ts(result.finished_at) if result.finished_at else None, params_json(result.params),
        ))
        bench = t(result.name)
        rows["metrics"].extend(
            (run.id, pos, seq, bench, t(m.name), m.value, t(m.unit), m.direction)
            for seq, m in enumerate(result.metrics)
        )
        rows["request_samples"].extend(
            (run.id, pos, seq, s.start_ms, s.ok, s.ttft_ms, s.e2e_ms, s.itl_mean_ms,
             s.input_tokens, s.output_tokens, t(s.error))
            for seq, s in enumerate(result.requests)
        )
        rows["item_records"].extend(
            (run.id, pos, seq, t(i.item_id), i.correct, t(i.subject),
             clean_json(_json(i.scores)))
            for seq, i in enumerate(result.items)
        )
    return rows
