"""The one cattrs converter KITT uses for every JSON document it reads or writes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

import cattrs

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_unstructure_hook(datetime, datetime.isoformat)
converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))


def _strict(kind: type, accepts: tuple[type, ...]):
    """cattrs casts by default (`int(3.7) == 3`, `str(5) == "5"`): for documents people
    write, a wrong type must be an error instead."""

    def structure_scalar(value: Any, _: type) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, accepts):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return kind(value)

    return structure_scalar


converter.register_structure_hook(int, _strict(int, (int,)))
converter.register_structure_hook(float, _strict(float, (int, float)))
converter.register_structure_hook(bool, _strict(bool, (bool,)))
converter.register_structure_hook(str, _strict(str, (str,)))


def unstructure(obj: Any) -> Any:
    """The JSON-ready form (dicts, lists, scalars) of a model object."""
    return converter.unstructure(obj)


def structure(data: Any, cls: type[T]) -> T:
    """Build `cls` from its JSON-ready form; raises `cattrs` errors on bad data."""
    return converter.structure(data, cls)


def to_json(obj: Any, *, indent: int | None = None) -> str:
    # allow_nan=False: NaN/Infinity are not JSON; a metric that produced one is a bug.
    return json.dumps(unstructure(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def from_json(text: str | bytes, cls: type[T]) -> T:
    return structure(json.loads(text), cls)
