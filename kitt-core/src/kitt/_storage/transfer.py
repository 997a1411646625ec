"""Export and import of runs.

Formats: `json` (a directory, one `<run id>.json` document per run), `jsonl` (one run
per line) and `csv` (one row per metric value; export only, it is not lossless).
Import reads JSON/JSONL exports and `kitt run` results directories (their `metrics.json`
is the run document), validates everything first, then writes in one transaction.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import cattrs

from kitt._storage.contract import EVERY_RUN, ImportReport, RunFilter, Store
from kitt._util.converter import structure
from kitt.errors import BadInput
from kitt.records import Run

FORMATS = ("json", "jsonl", "csv")
CSV_COLUMNS = ("run_id", "model", "engine", "engine_version", "suite", "fingerprint",
               "started_at", "benchmark", "benchmark_version", "run_number", "passed",
               "metric", "value", "unit", "direction")
RESULTS_DOCUMENT = "metrics.json"


def document_filename(run_id: str) -> str:
    """A file name for a run's document: the percent-encoded id (no `/` or other surprises),
    shortened with a hash of the id when too long for file systems (import reads the id
    from the document, never from the name)."""
    name = quote(run_id, safe="")
    if len(name) > 120:
        name = f"{name[:80]}-{hashlib.sha256(run_id.encode()).hexdigest()[:20]}"
    return name + ".json"


@contextmanager
def _open_out(out: Any) -> Iterator[IO[str]]:
    if str(out) == "-":
        yield sys.stdout
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def export(store: Store, out: Any, fmt: str = "jsonl", where: RunFilter = EVERY_RUN) -> int:
    """Write matching runs to `out` (a path; `-` for stdout) as `json` (a directory with
    one document per run), `jsonl` or `csv` (metrics). Returns the runs written."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    count = 0
    if fmt == "json":
        if str(out) == "-":
            raise BadInput("the json format writes a directory", hint="give --out DIR, or use "
                           "--format jsonl for stdout")
        directory = Path(out)
        if directory.exists() and not directory.is_dir():
            raise BadInput(f"{directory} exists and is not a directory",
                           hint="give --out a new or existing directory")
        directory.mkdir(parents=True, exist_ok=True)
        for run_id, document in store.documents(where):
            (directory / document_filename(run_id)).write_text(document + "\n", "utf-8")
            count += 1
        return count
    with _open_out(out) as handle:
        for chunk in export_chunks(store, fmt, where, counted := []):
            handle.write(chunk)
    return len(counted)


def export_chunks(store: Store, fmt: str, where: RunFilter = EVERY_RUN,
                  run_ids: list[str] | None = None) -> Iterator[str]:
    """Matching runs as text, streamed: `jsonl` (a document per line), `json` (one JSON
    array of documents) or `csv` (a row per metric value, header first). The ids of the
    runs written are appended to `run_ids` as they go."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    seen = [] if run_ids is None else run_ids
    if fmt == "csv":
        buffer = _Lines()
        writer = csv.DictWriter(buffer, CSV_COLUMNS)
        writer.writeheader()
        yield buffer.take()
        for record in store.metric_rows(where):
            writer.writerow(record)
            if not seen or seen[-1] != record["run_id"]:
                seen.append(record["run_id"])
            yield buffer.take()
        return
    yield "[" if fmt == "json" else ""
    for run_id, document in store.documents(where):
        if fmt == "json":
            yield ("," if seen else "") + document
        else:
            yield document + "\n"
        seen.append(run_id)
    yield "]\n" if fmt == "json" else ""


class _Lines:
    """A text sink for csv.writer that hands back what was written since the last take."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text


def read_runs(paths: list[Any]) -> list[tuple[str, Run]]:
    """Every run in `paths` with where it came from; BadInput naming the first bad one."""
    found: list[tuple[str, Run]] = []
    for path in map(Path, paths):
        if not path.exists():
            raise BadInput(f"{path} does not exist", hint="give export files or results "
                           "directories")
        for file in _run_files(path):
            found.extend(_read_file(file))
    return found


def _run_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    # A results directory holds metrics.json beside hardware.json and config.json, which
    # are not runs: in a directory with a metrics.json only that file is read.
    files = []
    for directory in sorted({path, *(p for p in path.rglob("*") if p.is_dir())}):
        if (directory / RESULTS_DOCUMENT).is_file():
            files.append(directory / RESULTS_DOCUMENT)
        else:
            files.extend(sorted(p for p in directory.iterdir()
                                if p.is_file() and p.suffix in (".json", ".jsonl")))
    return files


def _read_file(file: Path) -> list[tuple[str, Run]]:
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {file}: {exc}") from exc
    # Lines end at "\n" only: documents may hold U+0085 or U+2028, which splitlines() splits.
    if file.suffix == ".jsonl" or (file.suffix != ".json" and _looks_like_jsonl(text)):
        return [(f"{file}:{number}", _parse(line, f"{file}:{number}"))
                for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{file} is not valid JSON: {exc}",
                       hint="import only files written by `kitt storage export` or `kitt run`"
                       ) from exc
    if isinstance(data, list):  # a JSON array of run documents
        return [(f"{file}[{i}]", _structure(item, f"{file}[{i}]")) for i, item in
                enumerate(data)]
    return [(str(file), _structure(data, str(file)))]


def _looks_like_jsonl(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return len([line for line in text.split("\n") if line.strip()]) > 1
    return False


def _parse(line: str, where: str) -> Run:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise BadInput(f"{where} is not valid JSON: {exc}",
                       hint="each line of a .jsonl export is one run document") from exc
    return _structure(data, where)


def _structure(data: Any, where: str) -> Run:
    try:
        return structure(data, Run)
    except (cattrs.BaseValidationError, ValueError, TypeError, AttributeError) as exc:
        detail = "; ".join(cattrs.transform_error(exc)) if isinstance(
            exc, cattrs.BaseValidationError) else str(exc)
        raise BadInput(f"{where} is not a KITT run document: {detail}",
                       hint="import only files written by `kitt storage export` or `kitt run`"
                       ) from exc


def import_paths(store: Store, paths: Sequence[Any]) -> ImportReport:
    """Import runs from JSON/JSONL exports and `kitt run` results directories.
    Everything is read and validated before anything is written; all or nothing."""
    return import_runs(store, [run for _, run in read_runs(list(paths))])


def import_runs(store: Store, runs: list[Run]) -> ImportReport:
    """Save `runs` in one transaction, skipping those stored with an identical document."""
    by_id: dict[str, Run] = {}
    for run in runs:
        by_id[run.id] = run
    existing = _existing(store, list(by_id))
    added = sum(1 for run_id in by_id if run_id not in existing)
    unchanged = [run for run_id, run in by_id.items() if existing.get(run_id) == run]
    changed = [run for run_id, run in by_id.items() if existing.get(run_id) != run]
    store.save_runs(changed)
    return ImportReport(added=added, replaced=len(changed) - added, unchanged=len(unchanged))


def _existing(store: Store, run_ids: list[str]) -> dict[str, Run]:
    from kitt._util.converter import from_json

    found: dict[str, Run] = {}
    for start in range(0, len(run_ids), 500):  # bounded IN lists
        chunk = tuple(run_ids[start:start + 500])
        for run_id, document in store.documents(RunFilter(ids=chunk)):
            found[run_id] = from_json(document, Run)
    return found
