"""Reading YAML files users write (suites, engines.yaml, custom evals) with errors that
point at the file, line and field.

ruamel.yaml's round-trip loader keeps line numbers on every mapping and sequence, so a
problem found after parsing (a wrong type, an unknown key) can still name its line.
Values come back as ruamel's `CommentedMap`/`CommentedSeq` (dict/list subclasses); call
`plain()` for ordinary dicts and lists once validation is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kitt.errors import BadInput

__all__ = ["YamlFile", "load_yaml", "plain"]


class YamlFile:
    """A parsed YAML file and helpers that raise `BadInput` naming `path:line`."""

    def __init__(self, path: Path, data: Any):
        self.path = path
        self.data = data

    def line_of(self, node: Any, key: Any = None) -> int | None:
        """1-based line of `node` (or of `key` inside a mapping, or index in a sequence)."""
        lc = getattr(node, "lc", None)
        if lc is None:
            return None
        try:
            if key is None:
                return lc.line + 1
            if isinstance(node, Mapping):
                return lc.key(key)[0] + 1
            return lc.item(key)[0] + 1
        except (KeyError, IndexError, TypeError, AttributeError):
            return lc.line + 1

    def error(self, message: str, node: Any = None, key: Any = None, *,
              field: str | None = None, hint: str | None = None) -> BadInput:
        """A `BadInput` reading `FILE:LINE: field 'F': MESSAGE`."""
        line = self.line_of(node, key) if node is not None else None
        where = f"{self.path}:{line}" if line else str(self.path)
        what = f" field {field!r}:" if field else ""
        return BadInput(f"{where}:{what} {message}", hint=hint)

    def mapping(self, node: Any, *, field: str, parent: Any = None, key: Any = None,
                hint: str | None = None) -> Mapping:
        """`node` if it is a mapping (an absent/empty value counts as `{}`)."""
        if node is None:
            return {}
        if not isinstance(node, Mapping):
            raise self.error(f"expected a mapping, got {_kind(node)}", parent, key, field=field,
                             hint=hint or "write `key: value` lines indented under it")
        return node

    def string(self, node: Any, *, field: str, parent: Any = None, key: Any = None,
               hint: str | None = None) -> str:
        if not isinstance(node, str) or not node.strip():
            raise self.error(f"expected a non-empty string, got {_kind(node)}", parent, key,
                             field=field, hint=hint or "write a text value (quote it if needed)")
        return node

    def only_keys(self, node: Mapping, allowed: Iterable[str], *, field: str | None = None) -> None:
        """Reject keys not in `allowed`, naming the first unknown one and the valid ones."""
        allowed = list(allowed)
        for key in node:
            if key not in allowed:
                where = f"{field}.{key}" if field else str(key)
                raise self.error(f"unknown key {key!r}; expected one of: {', '.join(allowed)}",
                                 node, key, field=where,
                                 hint="check the spelling against the documented schema")


def load_yaml(path: Path | str, *, what: str = "YAML file") -> YamlFile:
    """Parse `path`; syntax errors and unreadable files become `BadInput` with the line."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{what} {path} does not exist",
                       hint="check the path, or create the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {what} {path}: {exc}",
                       hint="make it a readable UTF-8 text file") from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = " ".join(filter(None, (exc.context, exc.problem)))
        raise BadInput(f"{path}{line}: invalid YAML: {problem}",
                       hint=f"fix the YAML syntax near line {line.lstrip(':') or '?'}") from None
    except YAMLError as exc:
        raise BadInput(f"{path}: invalid YAML: {exc}", hint="fix the YAML syntax") from None
    return YamlFile(path, data)


def plain(node: Any) -> Any:
    """Ordinary dicts, lists and scalars from ruamel's round-trip types."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _kind(node: Any) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    return f"{type(node).__name__} {node!r}"
