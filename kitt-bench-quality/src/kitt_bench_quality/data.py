"""Where items come from: the canonical Hugging Face dataset (cached), or local files in
the same schema for air-gapped labs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from kitt import BadInput

FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
DOCS = "docs/quality.md"


@attrs.frozen
class Schema:
    """A dataset's columns as KITT checks them in local files."""

    dataset: str
    """The canonical Hugging Face dataset (and config), for messages."""
    columns: Mapping[str, str]
    """column -> a short type description (`str`, `list[str]`, `int`...)."""
    eval_split: str
    fewshot_split: str | None = None

    def describe(self) -> str:
        return ", ".join(f"{name} ({kind})" for name, kind in self.columns.items())


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of a .jsonl, .json (a list of objects) or .parquet file."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BadInput(f"{path}: unsupported data file type {suffix or '(none)'}",
                       hint="use .jsonl, .json or .parquet")
    if not path.is_file():
        raise BadInput(f"data file {path} does not exist",
                       hint=f"check the path; local data layouts are described in {DOCS}")
    if suffix == ".parquet":
        import pyarrow.parquet

        try:
            return pyarrow.parquet.read_table(path).to_pylist()
        except Exception as exc:
            raise BadInput(f"{path}: not a readable parquet file: {exc}") from None
    text = path.read_text(encoding="utf-8")
    rows: list[Any]
    try:
        if suffix == ".json" and text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = []
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise BadInput(f"{path}:{number}: invalid JSON: {exc.msg}",
                                       hint="one JSON object per line (JSON Lines)") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise BadInput(f"{path}: row {number} is not a JSON object")
    return rows


def check_columns(path: Path, rows: list[dict[str, Any]], schema: Schema) -> None:
    if not rows:
        raise BadInput(f"{path} holds no rows", hint="add items in the schema: "
                       f"{schema.describe()}")
    for number, row in enumerate(rows, 1):
        missing = [column for column in schema.columns if column not in row]
        if missing:
            raise BadInput(
                f"{path}: row {number} lacks column(s) {', '.join(missing)}; "
                f"has {', '.join(row) or 'none'}",
                hint=f"local files need the {schema.dataset} schema: {schema.describe()} "
                     f"(see {DOCS})",
            )


def local_splits(setting: str, schema: Schema) -> dict[str, Path]:
    """`dataset:` as split -> file. A file is the evaluation split; a folder holds files
    named by split (`test.jsonl`, `dev.parquet`...)."""
    path = Path(setting).expanduser().resolve()
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise BadInput(f"{path}: unsupported data file type {path.suffix or '(none)'}",
                           hint="use .jsonl, .json or .parquet")
        return {schema.eval_split: path}
    if path.is_dir():
        found: dict[str, Path] = {}
        for child in sorted(path.iterdir()):
            if child.suffix.lower() in FORMATS and child.is_file():
                if child.stem in found:
                    raise BadInput(f"{path}: two files for split {child.stem!r}: "
                                   f"{found[child.stem].name} and {child.name}")
                found[child.stem] = child
        if schema.eval_split not in found:
            raise BadInput(
                f"{path} has no {schema.eval_split}.jsonl/.json/.parquet (the evaluation split)",
                hint=f"name the files by split: {schema.eval_split}.jsonl"
                     + (f", {schema.fewshot_split}.jsonl for few-shot examples"
                        if schema.fewshot_split else ""),
            )
        return found
    raise BadInput(f"dataset {path} does not exist",
                   hint=f"give a .jsonl/.json/.parquet file or a folder of them ({DOCS})")


def load_local(setting: str, schema: Schema) -> dict[str, list[dict[str, Any]]]:
    """Every split's rows, columns checked."""
    rows = {}
    for split, path in local_splits(setting, schema).items():
        rows[split] = read_rows(path)
        check_columns(path, rows[split], schema)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return path


def offline_error(dataset: str, exc: BaseException, setting_hint: str) -> BadInput:
    return BadInput(
        f"cannot load the Hugging Face dataset {dataset}: it is not in the local cache and "
        f"the hub cannot be reached ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
        hint=f"run once with network access to cache it, or use local files in the same "
             f"schema: `dataset: /path/to/file.jsonl` or a folder of <split>.jsonl files "
             f"({setting_hint}; see {DOCS})",
    )
