"""A run's results folder (docs/results.md):

    metrics.json       the whole run, lossless (what `kitt storage import` reads)
    hardware.json      the host fingerprint
    config.json        the effective configuration: suite, engine, options
    summary.md         a readable summary
    samples.jsonl.gz   one row per request or scored item, for analysis tools
    engine.log         the engine's output (when KITT launched it)
    report.html        a self-contained page with tables and plots
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kitt._report import render_report
from kitt._report.format import format_value
from kitt._util.converter import to_json, unstructure
from kitt._util.files import write_atomic
from kitt.records import Run


def write_results(run: Run, out: Path, *, engine_log: Path | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "metrics.json", to_json(run, indent=2) + "\n")
    write_atomic(out / "hardware.json", json.dumps(unstructure(run.hardware), indent=2) + "\n")
    write_atomic(out / "config.json", json.dumps(
        {"run_id": run.id, "model": run.model, "suite": run.suite,
         "engine": unstructure(run.engine), **run.config}, indent=2) + "\n")
    write_atomic(out / "summary.md", summary_markdown(run))
    with gzip.open(out / "samples.jsonl.gz", "wt", encoding="utf-8") as samples:
        for row in sample_rows(run):
            samples.write(json.dumps(row, allow_nan=False) + "\n")
    if engine_log is not None and engine_log.exists() and engine_log != out / "engine.log":
        shutil.move(str(engine_log), out / "engine.log")
    write_atomic(out / "report.html", render_report([run]))


def sample_rows(run: Run) -> Iterator[dict[str, Any]]:
    for result in run.results:
        where = {"run_id": run.id, "benchmark": result.name, "run_number": result.run_number}
        for request in result.requests:
            yield {**where, "kind": "request", **unstructure(request)}
        for item in result.items:
            yield {**where, "kind": "item", **unstructure(item)}


def summary_markdown(run: Run) -> str:
    lines = [
        f"# KITT run {run.id}",
        "",
        "| | |",
        "|---|---|",
        f"| model | `{run.model}` |",
        f"| engine | {run.engine.engine} {run.engine_version or ''} ({run.engine.mode}) |",
        f"| version from | {run.engine_version_source or ''} |",
        f"| suite | {run.suite} |",
        f"| status | **{run.status}** |",
        f"| started | {run.started_at.isoformat()} |",
        f"| finished | {run.finished_at.isoformat() if run.finished_at else ''} |",
        f"| hardware | `{run.hardware.fingerprint}` |",
        f"| KITT | {run.kitt_version} |",
    ]
    if run.error:
        lines += ["", f"**Error:** {run.error}"]
    for result in run.results:
        verdict = "passed" if result.passed else "FAILED"
        lines += ["", f"## {result.name} (run {result.run_number}): {verdict}", ""]
        if result.error:
            lines += [f"Error: `{result.error}`", ""]
        lines += [f"**Warning:** {warning}" for warning in result.warnings]
        if result.warnings:
            lines.append("")
        if result.metrics:
            lines += ["| metric | value | unit |", "|---|---:|---|"]
            lines += [f"| {m.name} | {format_value(m.value)} | {m.unit} |"
                      for m in result.metrics]
    return "\n".join(lines) + "\n"
