"""attrs validators and converters for plugins' option and parameter classes.

Public API: plugins use them as `kitt.validators.optional_int(1)` and so on. Each raises
ValueError with a message naming the field, which KITT reports with the file and line
the value came from.
"""

from __future__ import annotations

from typing import Any

import attrs


def optional_int(minimum: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{attribute.name} must be an integer, not {value!r}")
        if value < minimum:
            raise ValueError(f"{attribute.name} must be >= {minimum}, not {value}")

    return check


def optional_float(low: float, high: float) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{attribute.name} must be a number, not {value!r}")
        if not low < value <= high:
            raise ValueError(f"{attribute.name} must be in ({low:g}, {high:g}], not {value}")

    return check


def optional_str(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{attribute.name} must be a string, not {value!r}")


def one_of(*choices: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is not None and value not in choices:
            raise ValueError(f"{attribute.name} must be one of {', '.join(choices)}, "
                             f"not {value!r}")

    return check


def boolean(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be true or false, not {value!r}")


def string_list(value: Any) -> list[str]:
    """Converter: a list of strings, or one string split on whitespace (`-O extra_args=...`).
    A list, not a tuple: options are recorded as JSON and must round-trip unchanged."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"expected a list of strings, not {value!r}")
