"""How commands print: JSON for machines (`--json`), tables for people, errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    from rich.console import Console  # rich costs ~40 ms to import: only when printing
    from rich.table import Column, Table

    table = Table(*(Column(name, overflow="fold") for name in columns), title=title,
                  title_justify="left", box=None, pad_edge=False)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    # Piped output is read by tools and people alike: never squash it to 80 columns.
    Console(width=None if sys.stdout.isatty() else 240, highlight=False).print(table)


def print_fields(pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
    """A two-column key/value listing."""
    print_table(("field", "value"), pairs, title=title)


def warn(message: str) -> None:
    print(f"kitt: warning: {message}", file=sys.stderr)
