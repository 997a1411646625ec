"""attrs validators shared by the option classes."""

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


def optional_str(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{attribute.name} must be a string, not {value!r}")


def boolean(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be true or false, not {value!r}")
