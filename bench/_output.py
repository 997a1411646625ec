"""What every bench/ script ends with: the report as JSON on stdout and, with --out, in
a file (nox -s bench writes bench/results/NAME.json)."""

from __future__ import annotations

import json
from pathlib import Path


def emit(report: dict, out: Path | None) -> None:
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
