"""How numbers are shown to people: in reports, summaries and terminal tables alike."""

from __future__ import annotations


def format_value(value: float) -> str:
    """Numbers as people read them: integers plainly, others to 4 significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"
