"""Loading the runs a comparison or a report names: run ids and unique prefixes from the
store, or results folders and their metrics.json from disk."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kitt._compare.compare import RunValues
from kitt.errors import BadInput
from kitt.records import Run


def load_values(refs: Iterable[str], store_url: str | None = None) -> list[RunValues]:
    """What `compare` needs of each reference: a results folder or its metrics.json is
    read whole; run ids and prefixes are looked up in the store, without their documents.
    The store is opened only when some reference is not a path."""
    refs = list(refs)
    loaded: dict[int, RunValues] = {
        i: RunValues.of_run(_read_run_file(path))
        for i, path in enumerate(map(_run_file, refs)) if path is not None}
    missing = [i for i in range(len(refs)) if i not in loaded]
    if missing:
        from kitt._storage.open import open_store

        with open_store(store_url, create=False) as store:
            stored = store.comparison_values([refs[i] for i in missing])
        loaded.update(zip(missing, map(RunValues.of_stored, stored), strict=True))
    return [loaded[i] for i in range(len(refs))]


def _run_file(ref: str) -> Path | None:
    """The run document `ref` names as a path (a results folder or a file), if it does."""
    path = Path(ref)
    if path.is_dir() and (path / "metrics.json").is_file():
        path = path / "metrics.json"
    return path if path.is_file() else None


def load_runs(refs: Iterable[str], store_url: str | None = None) -> list[Run]:
    """Runs by id or unique id prefix in the store, or by path to a results folder or its
    metrics.json. The store is opened only when some reference is not a path."""
    refs = list(refs)
    loaded = {i: _read_run_file(path) for i, path in enumerate(map(_run_file, refs))
              if path is not None}
    missing = [i for i in range(len(refs)) if i not in loaded]
    if missing:
        from kitt._storage.open import open_store

        with open_store(store_url, create=False) as store:
            for i in missing:
                loaded[i] = store.get_run(refs[i])
    return [loaded[i] for i in range(len(refs))]


def _read_run_file(path: Path) -> Run:
    from kitt._util.converter import from_json

    try:
        return from_json(path.read_bytes(), Run)
    except Exception as exc:  # OSError, bad JSON, or cattrs' validation error groups
        raise BadInput(f"{path} is not a KITT run document: {type(exc).__name__}: {exc}",
                       hint="pass a run id, a results folder or its metrics.json") from None
